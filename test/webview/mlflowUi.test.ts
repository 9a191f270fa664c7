// MLflow's UI on the workspace's tracking server, in headless Chromium: the server answers its
// user alone, so a browser gets in only through a one-time link ("Open in MLflow", `tracking ui`).
// A real daemon and `mlflow server`; it runs in this tier because Chromium is installed for it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { MlflowClient } from '../../core/src/mlflow/client';
import { acquireTrackingServer, browserLinkPath, stopTrackingServer, type TrackingServerLease } from '../../core/src/mlflow/serverLease';
import { defaultStoreUri } from '../../core/src/mlflow/supervisor';
import { VENV_PYTHON } from '../core/helpers/mlflowServer';
import { REPO_ROOT, launch } from './harness/panel';

const CLI = { node: process.execPath, args: ['--import', pathToFileURL(join(REPO_ROOT, 'node_modules/tsx/dist/loader.mjs')).href, join(REPO_ROOT, 'cli/src/main.ts')] };

describe("the workspace tracking server's UI in a browser", () => {
  let workspace: string;
  let lease: TrackingServerLease;
  let browser: Browser;

  before(async () => {
    workspace = mkdtempSync(join(tmpdir(), 'hr-mlflow-ui-'));
    lease = await acquireTrackingServer({ workspace, storeUri: defaultStoreUri(workspace), python: VENV_PYTHON, cli: CLI, idleTimeoutSeconds: 120 });
    await lease.ready();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    lease?.release();
    if (lease) await stopTrackingServer(lease.record);
    rmSync(workspace, { recursive: true, force: true });
  });

  it('refuses a browser without the link, lets one in through it once, and shows the experiment it names', async () => {
    const experimentId = await new MlflowClient({ trackingUri: lease.uri, auth: lease.auth }).getOrCreateExperiment('seen-in-the-browser');

    const stranger = await browser.newContext();
    const refused = await stranger.newPage();
    const answer = await refused.goto(`${lease.uri}/`);
    assert.equal(answer?.status(), 401);
    assert.match(await refused.textContent('body') ?? '', /private to the user who started it/);

    const path = await browserLinkPath(lease.uri, lease.record.apiToken, `#/experiments/${experimentId}`);
    const user = await browser.newContext();
    const page = await user.newPage();
    await page.goto(`${lease.uri}${path}`);
    assert.equal(new URL(page.url()).pathname, '/', page.url());
    assert.equal(new URL(page.url()).hash, `#/experiments/${experimentId}`);
    // The UI's own requests (scripts, the experiment's API calls) go through with the cookie.
    await page.getByText('seen-in-the-browser').first().waitFor({ timeout: 90_000 });
    const cookies = await user.cookies();
    assert.equal(cookies.length, 1);
    assert.equal(cookies[0]!.httpOnly, true);
    assert.equal(cookies[0]!.sameSite, 'Strict');

    // The same link a second time, in another browser: used up.
    const again = await stranger.newPage();
    const second = await again.goto(`${lease.uri}${path}`);
    assert.equal(second?.status(), 401);
    assert.match(await again.textContent('body') ?? '', /has been used or has expired/);
    await stranger.close();
    await user.close();
  });
});
