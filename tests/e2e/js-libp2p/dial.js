// A js-libp2p browser node (the JS implementation of libp2p, an independent one) for the
// interop test: it reaches the relay over WebSocket and dials a tabnode page over libp2p's
// WebRTC (private-to-private) transport through the page's reservation. Bundled by the test
// with esbuild; `window.jsLibp2pDial` reports what the connection runs over.
import { createLibp2p } from 'libp2p';
import { webRTC } from '@libp2p/webrtc';
import { webSockets } from '@libp2p/websockets';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2';
import { identify } from '@libp2p/identify';
import { multiaddr } from '@multiformats/multiaddr';

window.jsLibp2pDial = async (relayAddr, target) => {
  const node = await createLibp2p({
    transports: [webSockets(), webRTC(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // The relay is on 127.0.0.1, which js-libp2p refuses to dial by default.
    connectionGater: { denyDialMultiaddr: () => false },
    services: { identify: identify() },
  });
  window.jsLibp2p = node;
  await node.dial(multiaddr(relayAddr));
  const conn = await node.dial(multiaddr(`${relayAddr}/p2p-circuit/webrtc/p2p/${target}`), { signal: AbortSignal.timeout(30_000) });
  return { peerId: node.peerId.toString(), remoteAddr: conn.remoteAddr.toString(), status: conn.status };
};
