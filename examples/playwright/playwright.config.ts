import { defineConfig } from "@playwright/test";

// Debian's Chromium, not a browser Playwright downloads: install with
// PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 and point CHROMIUM (or the default
// below) at your own Chromium or Chrome.
const executablePath = process.env["CHROMIUM"] ?? "/usr/bin/chromium";

export default defineConfig({
  testDir: "tests",
  // One stunfault per test, and each test ends on its first expected
  // event: a few seconds each. Chromium reports a dropped request only
  // after about 40 s of retransmissions, so keep rules that drop out of
  // these tests, or raise the timeout.
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: true,
  workers: process.env["CI"] ? 2 : undefined,
  forbidOnly: !!process.env["CI"],
  reporter: "list",
  use: {
    browserName: "chromium",
    headless: true,
    launchOptions: {
      executablePath,
      args: [
        // The machine may have no network beyond loopback: without these
        // Chromium's own connections (updates, sync, field trials) are
        // refused many at a time, and it resolves a few Google host names
        // at start. Answer every name NOTFOUND without a DNS query; the
        // page and the ICE servers are IP literals.
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        // WebRTC: gather on loopback, keep IP addresses in candidates
        // instead of mDNS names, and grant getUserMedia with a fake device
        // (without a media permission Chromium gathers from one wildcard
        // socket, not from each interface).
        "--allow-loopback-in-peer-connection",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
      ],
    },
    // Playwright adds --no-sandbox unless chromiumSandbox is true: needed
    // when the tests run as root (CI containers), where the sandbox refuses
    // to start.
  },
});
