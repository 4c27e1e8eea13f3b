// Type-checks the test kit `tabnode-web/testing` as a test suite would use it.
import { converged, launchChromium, openTabs, shareContext, startNodes, startRelay } from 'tabnode-web/testing';

export async function suite(kvStore: Uint8Array): Promise<string> {
  const relay = await startRelay({ binary: 'target/release/tabnode-relay' });
  const browser = await launchChromium({ executablePath: '/usr/bin/chromium' });
  const { nodes, stop } = await startNodes(browser, { nodes: 2, relays: [relay.address] });
  try {
    const appId: string = await nodes[0].installApp(kvStore);
    const ctx: string = await shareContext(nodes, appId);
    await nodes[1].watch(ctx);
    const value = await nodes[0].execute<string | null>(ctx, 'get', { key: 'k' });
    const applied = (await nodes[1].events()).filter((e) => e.type === 'deltaApplied').length;
    return `${await converged(nodes, ctx)} ${value} ${applied}`;
  } finally {
    await stop();
    await browser.close();
    await relay.stop();
  }
}

/** Three tabs of one app on one node: the first hosts it; closing it hands the node on. */
export async function tabs(kvStore: Uint8Array): Promise<boolean> {
  const browser = await launchChromium({ executablePath: '/usr/bin/chromium', attempts: 2 });
  const { tabs, openTab, stop } = await openTabs(browser, { tabs: 3, dbName: 'my-app', hostTimeoutMs: 2_000 });
  try {
    const appId: string = await tabs[1].installApp(kvStore);
    await tabs[0].page.close();
    const late = await openTab();
    return typeof (await late.call<string>('createContext', appId, {})) === 'string';
  } finally {
    await stop();
    await browser.close();
  }
}
