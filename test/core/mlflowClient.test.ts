import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MlflowClient, MlflowError, mlflowAuthFromEnv, parseMlflowJson, type MlflowRun } from '../../core/src/mlflow/client';
import { childRunsFilter, filterKey, filterValue } from '../../core/src/mlflow/tags';
import { freePort, runMlflowPython, startMlflowServer, type TestMlflowServer } from './helpers/mlflowServer';

/** A tiny HTTP server on loopback answering with `handler`; records what it received. */
async function httpServer(
  handler: (req: IncomingMessage, res: ServerResponse, count: number) => void,
): Promise<{ uri: string; requests: IncomingMessage[]; close(): Promise<void> }> {
  const requests: IncomingMessage[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req);
    req.resume();
    req.on('end', () => handler(req, res, requests.length));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    uri: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<MlflowError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof MlflowError, `expected MlflowError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.ok(!error.message.includes('\n'), 'the message is one line');
    return error;
  }
  assert.fail(`expected a rejection with ${code}`);
}

/** Runs `task` over `items` with at most `limit` in flight. */
async function inParallel<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index] as T);
    }
  });
  await Promise.all(lanes);
  return results;
}

describe('MLflow client against a real mlflow server', () => {
  let server: TestMlflowServer;
  let client: MlflowClient;

  before(async () => {
    server = await startMlflowServer();
    client = new MlflowClient({ trackingUri: server.uri });
  });
  after(async () => {
    await server?.stop();
  });

  it('answers /health and /version', async () => {
    await client.health();
    assert.match(await client.serverVersion(), /^3\.\d+/);
  });

  it('creates, finds and lists experiments', async () => {
    assert.equal(await client.getExperimentByName('client-exp'), undefined);
    const id = await client.getOrCreateExperiment('client-exp');
    assert.equal(await client.getOrCreateExperiment('client-exp'), id);
    const byName = await client.getExperimentByName('client-exp');
    assert.equal(byName?.experimentId, id);
    const got = await client.getExperiment(id);
    assert.equal(got.name, 'client-exp');
    assert.equal(got.lifecycleStage, 'active');
    const all = await client.searchAllExperiments({ pageSize: 1 });
    assert.ok(all.some((e) => e.experimentId === id));
    assert.ok(all.some((e) => e.name === 'Default'));
  });

  it('writes a parent run with child runs and reads them back by filter', async () => {
    const experimentId = await client.getOrCreateExperiment('client-tree');
    const parent = await client.createRun({
      experimentId,
      runName: 'study',
      tags: { 'hyperopt_runner.study_id': 'S1', runSource: 'hyperoptAutoTracking' },
    });
    assert.equal(parent.info.status, 'RUNNING');
    await client.logBatch(parent.info.runId, { params: { max_evals: '3', algo: 'tpe' } });
    const children: MlflowRun[] = [];
    for (let tid = 0; tid < 3; tid++) {
      const child = await client.createRun({
        experimentId,
        runName: `trial ${tid}`,
        parentRunId: parent.info.runId,
        tags: { 'hyperopt_runner.tid': String(tid) },
      });
      await client.logBatch(child.info.runId, {
        params: { x: String(tid * 0.5) },
        metrics: [{ key: 'loss', value: 1 / (tid + 1) }],
        tags: { trial_status: 'ok' },
      });
      await client.finishRun(child.info.runId, tid === 2 ? 'FAILED' : 'FINISHED');
      children.push(child);
    }
    await client.setTag(parent.info.runId, 'note', 'done');
    const info = await client.finishRun(parent.info.runId);
    assert.equal(info.status, 'FINISHED');
    assert.ok(info.endTime !== undefined);

    const found = await client.searchAllRuns({
      experimentIds: [experimentId],
      filter: childRunsFilter(parent.info.runId),
      orderBy: ['attributes.start_time ASC'],
    });
    assert.deepEqual(
      found.map((r) => r.data.tags['hyperopt_runner.tid']),
      ['0', '1', '2'],
    );
    assert.deepEqual(
      found.map((r) => r.info.status),
      ['FINISHED', 'FINISHED', 'FAILED'],
    );
    assert.equal(found[1]?.data.metrics.loss, 0.5);
    assert.equal(found[1]?.data.params.x, '0.5');
    assert.equal(found[1]?.data.tags['mlflow.parentRunId'], parent.info.runId);

    const byTag = await client.searchAllRuns({
      experimentIds: [experimentId],
      filter: `${filterKey('tags', 'hyperopt_runner.study_id')} = ${filterValue('S1')}`,
    });
    assert.deepEqual(
      byTag.map((r) => r.info.runId),
      [parent.info.runId],
    );
    const again = await client.getRun(parent.info.runId);
    assert.equal(again.data.tags.note, 'done');
    assert.equal(again.data.params.max_evals, '3');
    assert.equal(again.info.runName, 'study');
  });

  it('pages through a few hundred runs, each exactly once', async () => {
    const experimentId = await client.getOrCreateExperiment('client-paging');
    const total = 240;
    const created = await inParallel(
      Array.from({ length: total }, (_, i) => i),
      8,
      (i) => client.createRun({ experimentId, runName: `r${i}`, startTime: 1_700_000_000_000 + i }),
    );
    const pageSize = 37;
    const seen = new Map<string, number>();
    let pages = 0;
    for await (const page of client.searchRunsPages({ experimentIds: [experimentId], pageSize })) {
      pages++;
      assert.ok(page.items.length <= pageSize);
      for (const run of page.items) seen.set(run.info.runId, (seen.get(run.info.runId) ?? 0) + 1);
    }
    assert.equal(pages, Math.ceil(total / pageSize));
    assert.equal(seen.size, total);
    assert.ok([...seen.values()].every((count) => count === 1));
    for (const run of created) assert.ok(seen.has(run.info.runId));
    const collected = await client.searchAllRuns({ experimentIds: [experimentId], pageSize: 100 });
    assert.equal(collected.length, total);
  });

  it('round-trips NaN and infinite metric values', async () => {
    const experimentId = await client.getOrCreateExperiment('client-nan');
    const run = await client.createRun({ experimentId });
    await client.logBatch(run.info.runId, {
      metrics: [
        { key: 'loss', value: Number.NaN, step: 0 },
        { key: 'loss', value: 0.25, step: 1 },
        { key: 'up', value: Infinity },
        { key: 'down', value: -Infinity },
      ],
    });
    // What mlflow 3.17 puts on the wire: NaN spelled as a string, infinities as the largest double.
    const raw = await fetch(`${server.uri}/api/2.0/mlflow/metrics/get-history?run_id=${run.info.runId}&metric_key=loss`);
    const rawText = await raw.text();
    assert.match(rawText, /"value": "NaN"/);
    const rawRun = await (await fetch(`${server.uri}/api/2.0/mlflow/runs/get?run_id=${run.info.runId}`)).text();
    assert.match(rawRun, /1\.7976931348623157e\+308/);

    const history = await client.getMetricHistory(run.info.runId, 'loss');
    assert.equal(history.length, 2);
    assert.ok(Number.isNaN(history[0]?.value));
    assert.equal(history[1]?.value, 0.25);
    const got = await client.getRun(run.info.runId);
    assert.equal(got.data.metrics.up, Infinity);
    assert.equal(got.data.metrics.down, -Infinity);

    // A NaN logged by the Python client reads back the same way.
    await runMlflowPython(
      server.uri,
      `import mlflow\nwith mlflow.start_run(run_id="${run.info.runId}"):\n    mlflow.log_metric("py_nan", float("nan"))\n`,
    );
    const afterPython = await client.getRun(run.info.runId);
    assert.ok(Number.isNaN(afterPython.data.metrics.py_nan));
  });

  it('accepts bare NaN and Infinity tokens as some servers send them', () => {
    const parsed = parseMlflowJson('{"a": NaN, "b": [Infinity, -Infinity], "c": "NaN Infinity \\" NaN"}');
    assert.deepEqual(parsed, { a: 'NaN', b: ['Infinity', '-Infinity'], c: 'NaN Infinity " NaN' });
  });

  it('reports a missing run as not_found with the URL and a fix', async () => {
    const error = await rejectsWith(client.getRun('0123456789abcdef0123456789abcdef'), 'not_found');
    assert.equal(error.status, 404);
    assert.equal(error.mlflowCode, 'RESOURCE_DOES_NOT_EXIST');
    assert.ok(error.message.includes(`${server.uri}/api/2.0/mlflow/runs/get`), error.message);
    assert.match(error.message, /check the experiment or run id/);
  });

  it('reports an invalid filter as bad_request without retrying', async () => {
    const error = await rejectsWith(
      client.searchRunsPage({ experimentIds: ['0'], filter: 'this is = not a filter =' }),
      'bad_request',
    );
    assert.equal(error.mlflowCode, 'INVALID_PARAMETER_VALUE');
  });
});

describe('MLflow client against servers that are not MLflow', () => {
  it('calls an HTML page not_mlflow', async () => {
    const web = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><html><body>Welcome to nginx!</body></html>');
    });
    try {
      const client = new MlflowClient({ trackingUri: web.uri });
      const error = await rejectsWith(client.searchExperimentsPage(), 'not_mlflow');
      assert.match(error.message, /HTML page/);
      assert.match(error.message, /check the tracking URI/);
      assert.ok(error.message.includes(web.uri));
      await rejectsWith(client.health(), 'not_mlflow');
      assert.equal(web.requests.length, 2, 'a wrong kind of server is not retried');
    } finally {
      await web.close();
    }
  });

  it('calls JSON of the wrong shape and a bare 404 not_mlflow', async () => {
    const web = await httpServer((req, res) => {
      if (req.url?.startsWith('/api/2.0/mlflow/runs/get')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"hello": "world"}');
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('Not Found');
      }
    });
    try {
      const client = new MlflowClient({ trackingUri: web.uri });
      await rejectsWith(client.getRun('abc'), 'not_mlflow');
      await rejectsWith(client.getExperiment('1'), 'not_mlflow');
    } finally {
      await web.close();
    }
  });

  it('gives unreachable after its retries when nothing listens', async () => {
    const port = await freePort();
    let attempts = 0;
    const client = new MlflowClient({
      trackingUri: `http://127.0.0.1:${port}`,
      maxRetries: 2,
      retryBaseDelayMs: 10,
      fetch: (input, init) => {
        attempts++;
        return fetch(input, init);
      },
    });
    const error = await rejectsWith(client.searchExperimentsPage(), 'unreachable');
    assert.equal(attempts, 3);
    assert.match(error.message, /ECONNREFUSED/);
    assert.match(error.message, /after 3 attempt/);
    assert.match(error.message, /start the tracking server/);
  });

  it('retries 503 with backoff and succeeds (a flaky proxy stands in for the server)', async () => {
    const proxy = await httpServer((_req, res, count) => {
      if (count <= 2) {
        res.writeHead(503, { 'content-type': 'text/html' });
        res.end('<html>Service Unavailable</html>');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ experiments: [{ experiment_id: '0', name: 'Default', lifecycle_stage: 'active' }] }));
    });
    try {
      const client = new MlflowClient({ trackingUri: proxy.uri, retryBaseDelayMs: 20 });
      const page = await client.searchExperimentsPage();
      assert.equal(page.items[0]?.name, 'Default');
      assert.equal(page.nextPageToken, undefined);
      assert.equal(proxy.requests.length, 3);
    } finally {
      await proxy.close();
    }
  });

  it('gives server_error when 5xx persists, and does not retry 4xx', async () => {
    const proxy = await httpServer((req, res) => {
      const status = req.url?.includes('runs/get') ? 502 : 403;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error_code: status === 403 ? 'PERMISSION_DENIED' : 'BAD_GATEWAY', message: 'no' }));
    });
    try {
      const client = new MlflowClient({ trackingUri: proxy.uri, maxRetries: 2, retryBaseDelayMs: 5 });
      const failed = await rejectsWith(client.getRun('x'), 'server_error');
      assert.equal(failed.status, 502);
      assert.equal(proxy.requests.length, 3);
      await rejectsWith(client.searchExperimentsPage(), 'forbidden');
      assert.equal(proxy.requests.length, 4);
    } finally {
      await proxy.close();
    }
  });

  it('sends bearer or basic credentials and maps 401 to unauthorized', async () => {
    const proxy = await httpServer((_req, res) => {
      res.writeHead(401, { 'content-type': 'text/html', 'www-authenticate': 'Basic realm="mlflow"' });
      res.end('<html>401</html>');
    });
    try {
      const bearer = new MlflowClient({
        trackingUri: proxy.uri,
        auth: mlflowAuthFromEnv({ MLFLOW_TRACKING_TOKEN: 'tok' }),
      });
      const error = await rejectsWith(bearer.getRun('x'), 'unauthorized');
      assert.match(error.message, /MLFLOW_TRACKING_TOKEN/);
      assert.equal(proxy.requests[0]?.headers.authorization, 'Bearer tok');
      const basic = new MlflowClient({
        trackingUri: proxy.uri,
        auth: mlflowAuthFromEnv({ MLFLOW_TRACKING_USERNAME: 'ann', MLFLOW_TRACKING_PASSWORD: 'pw' }),
      });
      await rejectsWith(basic.getRun('x'), 'unauthorized');
      assert.equal(proxy.requests[1]?.headers.authorization, `Basic ${Buffer.from('ann:pw').toString('base64')}`);
      assert.equal(proxy.requests.length, 2);
    } finally {
      await proxy.close();
    }
  });

  it('stops retrying at once when its signal aborts', async () => {
    const proxy = await httpServer((_req, res) => {
      res.writeHead(503);
      res.end();
    });
    try {
      const client = new MlflowClient({ trackingUri: proxy.uri, maxRetries: 10, retryBaseDelayMs: 10_000 });
      const controller = new AbortController();
      const started = Date.now();
      const pending = client.searchExperimentsPage({}, undefined, controller.signal);
      setTimeout(() => controller.abort(), 100);
      await assert.rejects(pending, (error: unknown) => error instanceof Error && error.name === 'AbortError');
      assert.ok(Date.now() - started < 5000);
      assert.equal(proxy.requests.length, 1);
    } finally {
      await proxy.close();
    }
  });
});
