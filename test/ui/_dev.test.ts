import path from 'node:path';
import { chromium } from 'playwright-core';
import { it } from 'vitest';
import { startHarness } from '../api/harness.ts';

it('dev: chart width', async () => {
  const h = await startHarness();
  const token = await h.token(['deploy:read']);
  const id = await h.insertDeployment('shop', 'prod');
  await h.journal(id, 1, 'verifying.running', 'applying.running');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('pageerror', (e) => console.log('pageerror', e.message));
  await page.goto(`${h.baseUrl}/ui`);
  await page.locator('#token-input').fill(token);
  await page.locator('#token-form button[type=submit]').click();
  await page.goto(`${h.baseUrl}/ui/deployments/shop/prod`);
  await page.locator('body[data-deployment-ready="true"]').waitFor();
  const r = await page.evaluate(() => { const svg = document.querySelector('svg.statechart')!; return { w: svg.getAttribute('width'), h: svg.getAttribute('height'), vb: svg.getAttribute('viewBox'), box: (document.getElementById('chart') as HTMLElement).clientWidth }; });
  console.log('DEV', JSON.stringify(r));
  await page.locator('#chart').screenshot({ path: path.resolve('test-artifacts/ui/dev-chart.png') });
  for (const id of (process.env.EXPAND ?? '').split(',').filter(Boolean)) {
    await page.locator(`[data-state-id="${id}"]`).first().click();
    await page.locator(`[data-state-id="${id}"][data-expanded]`).waitFor();
  }
  if (process.env.EXPAND) {
    console.log('DEV2', await page.evaluate(() => document.querySelector('svg.statechart')!.getAttribute('viewBox')));
    await page.locator('#chart').screenshot({ path: path.resolve('test-artifacts/ui/dev-chart2.png') });
  }
  await browser.close();
  await h.close();
}, 60_000);
