// Type-checks the JS API as an embedding web app would use it (`tsc` in `make test`, no emit):
// a wrong argument or a misread result here is a compile error.
// `tabnode-web` resolves to pkg/ (tsconfig `paths`), through its package.json as an installed package would.
import init, { BrowserNode, type AnchorWrite, type Checkpoint, type ProxySend, type ExecuteResult, type NodeEvent } from 'tabnode-web';

export async function embed(wasm: Uint8Array): Promise<string> {
  await init(); // once per page: fetches and compiles tabnode_web_bg.wasm
  const node: BrowserNode = await BrowserNode.create({ dbName: 'my-app', relays: ['/ip4/127.0.0.1/tcp/9090/ws/p2p/12D3KooW'] });
  const strict: BrowserNode = await BrowserNode.create({ dbName: 'my-kiosk', durability: 'strict' });
  // @ts-expect-error: a durability is 'relaxed' or 'strict'
  await BrowserNode.create({ dbName: 'my-kiosk', durability: 'fast' });
  const durability: string = strict.durability;
  void durability;
  const appId: string = await node.installApp(wasm);
  const ctx: string = await node.createContext(appId, {});
  const invitation: string = await node.inviteAs(ctx, { role: 'reader', expiresInMs: 3_600_000 });
  const result: ExecuteResult = await node.execute(ctx, 'set', { key: 'k', value: 'v' });
  const root: string | null = result.rootHash;
  const once: boolean = (await node.execute(ctx, 'set', { key: 'k', value: 'v' }, { callId: 'call-1' })).repeated;
  const checkpoint: Checkpoint = await node.checkpoint(ctx);
  const upgrade: string = await node.upgradeApp(ctx, wasm, 'migrate_v1_to_v2');
  const unsubscribe: () => void = node.subscribe(ctx, (event: NodeEvent) => {
    if (event.type === 'event' && !event.local) console.log(event.kind, event.data);
    if (event.type === 'syncRejected') console.warn(event.reason);
  });
  unsubscribe();
  const report = await node.verifyAudit(ctx);
  const ok: boolean = report.ok && (await node.replay(ctx)).matches;
  const who = await node.identity();
  const direct: number = node.connections().filter((c) => c.via === 'webrtc').length;
  const rotated: string = (await node.rotateKey()).clientKey;
  const admins: string[] = (await node.members(ctx)).filter((m) => m.role === 'admin').map((m) => m.key);
  const proxy = await node.proposals(ctx);
  const pending: string[] = proxy.proposals.filter((p) => p.status === 'active').map((p) => p.id);
  const approvers: number = (await node.proposal(ctx, pending[0])).approvers.length;
  const approval: string = await node.approveProposal(ctx, pending[0]);
  const colour: string | number[] | null = await node.contextValue(ctx, 'colour');
  const written: AnchorWrite = await node.writeAnchor(ctx); // needs nearRpc and nearContract
  const onChain = proxy.proposals.filter((p) => p.status === 'onChain').map((p) => p.action);
  const sent: ProxySend = await node.sendProposalToChain(ctx, pending[0]); // the wallet sends
  const ran: boolean = sent.onChain?.status === 'ran' || (sent.onChain?.status === 'pending' && sent.onChain.approvals > onChain.length);
  const tx: string = written.transactionHash ?? `${written.requests.map((r) => r.kind).join(',')} ${written.anchor?.appMatches}`;
  return `${upgrade} ${invitation} ${root} ${checkpoint.merkleRoot} ${ok} ${who?.accountId ?? 'nobody'} ${admins.length} ${rotated} ${direct} ${tx} ${proxy.numApprovals} ${approvers} ${approval} ${colour} ${ran} ${sent.request}`;
}
