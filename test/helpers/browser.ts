/**
 * A real browser for pages: Debian's chromium, headless, driven by playwright-core (no browser is
 * downloaded). Every request the page makes is recorded, so a test can prove a page fetches nothing.
 */
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { chromium, type Page } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';

export interface OpenedPage {
  readonly url: string;
  /** Every URL the page requested, in order (the page itself first). */
  readonly requests: readonly string[];
  evaluate: Page['evaluate'];
  close(): Promise<void>;
}

export async function openInBrowser(file: string): Promise<OpenedPage> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install the Debian package chromium`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    const url = pathToFileURL(file).href;
    await page.goto(url, { waitUntil: 'load' });
    return { url, requests, evaluate: page.evaluate.bind(page) as Page['evaluate'], close: () => browser.close() };
  } catch (e) {
    await browser.close();
    throw e;
  }
}
