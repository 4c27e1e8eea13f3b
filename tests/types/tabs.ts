// Type-checks `tabnode-web/tabs` as an app with several tabs uses it: the same calls as a
// BrowserNode (each a Promise), its events, and the two errors a follower tab's call may get.
import init from 'tabnode-web';
import { TabNode } from 'tabnode-web/tabs';

export async function everyTab(wasm: Uint8Array): Promise<string> {
  await init(); // every tab: any of them may come to host the node
  const node: TabNode = await TabNode.open({ dbName: 'my-app', relays: [], hostTimeoutMs: 5_000 });
  const hosting: boolean = node.isHost;
  const appId: string = await node.installApp(wasm);
  const ctx: string = await node.createContext(appId, {});
  const unsubscribe: () => void = node.subscribe(ctx, (event) => {
    if (event.type === 'event') console.log(event.kind, event.data);
  });
  try {
    await node.execute(ctx, 'set', { key: 'k', value: 'v' });
  } catch (err) {
    const name = (err as Error).name;
    if (name === 'NoHost') console.log('not applied: safe to call again');
    if (name === 'HostLost') console.log('may have been applied: read before writing again');
  }
  node.subscribe(null, (event) => {
    if (event.type === 'hostChanged') console.log(event.isHost ? 'this tab hosts the node' : 'another tab hosts it');
  });
  const dialed: Promise<void> = node.dialPeer('12D3KooW'); // a Promise here, as every forwarded call
  void dialed;
  unsubscribe();
  const direct: number = node.connections().filter((c) => c.via === 'webrtc').length;
  return `${hosting} ${node.publicKey} ${node.durability} ${node.peers().length} ${direct} ${(await node.checkpoint(ctx)).rootHash}`;
}
