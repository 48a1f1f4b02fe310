// Chrome DevTools protocol helper for e2e.sh (Node 22+: global WebSocket and fetch).
//   node cdp.mjs screenshot PORT URL_PREFIX OUT.png   capture the page whose URL starts with URL_PREFIX
//   node cdp.mjs wait PORT URL_PREFIX SECONDS         wait until that page exists
import { writeFileSync } from "node:fs";

const [cmd, port, prefix, arg] = process.argv.slice(2);

async function findPage(deadline) {
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/json/list`);
      const pages = await res.json();
      const page = pages.find((p) => p.type === "page" && p.url.startsWith(prefix));
      if (page) return page;
    } catch {
      // Chromium not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`no page at ${prefix} on DevTools port ${port}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function session(wsUrl) {
  const ws = new WebSocket(wsUrl);
  let id = 0;
  const pending = new Map();
  ws.addEventListener("message", (ev) => {
    const msg = JSON.parse(ev.data);
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.error) p.reject(new Error(`${msg.error.message} (${msg.error.code})`));
    else p.resolve(msg.result);
  });
  const opened = new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve, { once: true });
    ws.addEventListener("error", () => reject(new Error(`cannot connect to ${wsUrl}`)), { once: true });
  });
  return {
    async send(method, params = {}) {
      await opened;
      const n = ++id;
      ws.send(JSON.stringify({ id: n, method, params }));
      return new Promise((resolve, reject) => pending.set(n, { resolve, reject }));
    },
    close: () => ws.close(),
  };
}

if (cmd === "wait") {
  await findPage(Date.now() + Number(arg) * 1000);
} else if (cmd === "screenshot") {
  const page = await findPage(Date.now() + 30000);
  const s = session(page.webSocketDebuggerUrl);
  const shot = await s.send("Page.captureScreenshot", { format: "png", captureBeyondViewport: false });
  writeFileSync(arg, Buffer.from(shot.data, "base64"));
  s.close();
} else {
  console.error(`usage: node cdp.mjs screenshot|wait PORT URL_PREFIX ARG (got ${cmd})`);
  process.exit(2);
}
