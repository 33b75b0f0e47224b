// Playwright fixtures: a stunfault process per test, and the softphone page
// served on loopback (a secure context, so getUserMedia works) and pointed
// at that stunfault's ICE servers.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

import { test as base, expect, type Locator, type Page } from "@playwright/test";
import { startStunfault, type IceServer, type StartOptions, type Stunfault } from "stunfault";

export { expect };

/** The softphone page under test. */
export class Softphone {
  constructor(readonly page: Page) {}

  /** Points the next call at these ICE servers (RTCConfiguration.iceServers). */
  async configure(iceServers: IceServer[]): Promise<void> {
    await this.page.evaluate((s) => (window as unknown as { softphone: { configure(s: unknown): void } }).softphone.configure(s), iceServers);
  }

  /** Clicks "Start call": the page gathers ICE candidates. */
  async startCall(): Promise<void> {
    await this.page.getByRole("button", { name: "Start call" }).click();
  }

  /** The icecandidateerror rows, optionally only those for url with errorCode code. */
  errors(filter: { url?: string; code?: number } = {}): Locator {
    let sel = '[data-testid="ice-error"]';
    if (filter.url !== undefined) sel += `[data-url="${filter.url}"]`;
    if (filter.code !== undefined) sel += `[data-code="${filter.code}"]`;
    return this.page.locator(sel);
  }

  /** The candidate rows of that type (host, srflx, relay), optionally only those with that address or url. */
  candidates(type: string, filter: { address?: string; url?: string } = {}): Locator {
    let sel = `[data-testid="candidate"][data-type="${type}"]`;
    if (filter.address !== undefined) sel += `[data-address="${filter.address}"]`;
    if (filter.url !== undefined) sel += `[data-url="${filter.url}"]`;
    return this.page.locator(sel);
  }

  /** The ICE gathering state the page shows (new, gathering, complete). */
  gathering(): Locator {
    return this.page.getByTestId("gathering");
  }
}

/** Only the entries of iceServers whose URL starts with prefix (such as "stun:" or "turn:"), and of those only such URLs. */
export function only(iceServers: IceServer[], prefix: string, suffix = ""): IceServer[] {
  return iceServers
    .map((s) => ({ ...s, urls: s.urls.filter((u) => u.startsWith(prefix) && u.endsWith(suffix)) }))
    .filter((s) => s.urls.length > 0);
}

const html = readFileSync(new URL("./softphone.html", import.meta.url));

export const test = base.extend<{ stunfaultOptions: StartOptions; stunfault: Stunfault; softphone: Softphone }>({
  // Per test (or describe) with test.use({stunfaultOptions: {...}}).
  stunfaultOptions: [{}, { option: true }],

  stunfault: async ({ stunfaultOptions }, use) => {
    const sf = await startStunfault(stunfaultOptions);
    await use(sf);
    await sf.stop();
  },

  softphone: async ({ page, stunfault }, use) => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
      res.end(html);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    await page.goto(`http://127.0.0.1:${port}/`);
    const phone = new Softphone(page);
    await phone.configure(stunfault.iceServers);
    await use(phone);
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  },
});
