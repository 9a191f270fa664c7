/**
 * A small typed client for MLflow's REST API (`<tracking uri>/api/2.0/mlflow/...`) over the
 * global `fetch`. Reads for the views (experiments, runs, metric history, with `page_token`
 * paging) and the writes a logger needs (create and update runs, log batches, set tags).
 *
 * Wire facts this relies on (checked against mlflow 3.17's server):
 * - Empty lists are left out of responses: `runs/search` with no match answers `{}`.
 * - A NaN metric comes back as the string `"NaN"`. Other servers and proxies may send bare
 *   `NaN`/`Infinity` tokens, which are not JSON; both forms are accepted.
 * - The SQL stores cannot hold infinities and keep ±1.7976931348623157e308 (the largest double)
 *   instead; this client reads that value back as ±Infinity.
 * - Errors are JSON `{error_code, message}`; a missing endpoint is an HTML 404 page.
 */

export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';
export type LifecycleStage = 'active' | 'deleted';
export type ViewType = 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL';

export interface RunInfo {
  runId: string;
  experimentId: string;
  runName?: string;
  userId?: string;
  status: RunStatus;
  /** Epoch milliseconds. */
  startTime?: number;
  endTime?: number;
  artifactUri?: string;
  lifecycleStage: LifecycleStage;
}

/** A run's params, latest metric values and tags, each keyed by name. */
export interface RunData {
  params: Record<string, string>;
  metrics: Record<string, number>;
  tags: Record<string, string>;
}

export interface MlflowRun {
  info: RunInfo;
  data: RunData;
}

export interface MlflowExperiment {
  experimentId: string;
  name: string;
  artifactLocation?: string;
  lifecycleStage: LifecycleStage;
  creationTime?: number;
  lastUpdateTime?: number;
  tags: Record<string, string>;
}

export interface MlflowMetric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
}

/** One page of a paged search; `nextPageToken` is absent on the last page. */
export interface Page<T> {
  items: T[];
  nextPageToken?: string;
}

export interface SearchRunsOptions {
  experimentIds: string[];
  /** MLflow filter string, e.g. `tags.mlflow.parentRunId = '<id>'`. */
  filter?: string;
  /** e.g. `['attributes.start_time DESC']`. */
  orderBy?: string[];
  /** Runs per page (MLflow allows up to 50,000; its default is 1,000). */
  pageSize?: number;
  runViewType?: ViewType;
}

export interface SearchExperimentsOptions {
  filter?: string;
  orderBy?: string[];
  pageSize?: number;
  viewType?: ViewType;
}

export interface CreateRunOptions {
  experimentId: string;
  runName?: string;
  /** Epoch milliseconds; defaults to now. */
  startTime?: number;
  tags?: Record<string, string>;
  /** Makes the new run a child of this run (tag `mlflow.parentRunId`). */
  parentRunId?: string;
  userId?: string;
  /**
   * A search filter that finds this run alone (its own tags): when an attempt fails without an
   * answer, the next one first looks for the run the lost answer may have created, so a retry
   * never makes a second run.
   */
  sameRunFilter?: string;
}

export interface UpdateRunOptions {
  status?: RunStatus;
  endTime?: number;
  runName?: string;
}

export interface MetricInput {
  key: string;
  /** NaN and ±Infinity are sent as MLflow's spelled-out strings. */
  value: number;
  /** Epoch milliseconds; defaults to now. */
  timestamp?: number;
  step?: number;
}

export interface LogBatchInput {
  metrics?: MetricInput[];
  params?: Record<string, string>;
  tags?: Record<string, string>;
}

export type MlflowAuth = { kind: 'bearer'; token: string } | { kind: 'basic'; username: string; password: string };

export interface MlflowClientOptions {
  /** `http(s)://host[:port][/prefix]`, the same URI the Python client takes. */
  trackingUri: string;
  auth?: MlflowAuth;
  /** Retries after the first attempt on connection errors, 429 and 5xx (default 4). */
  maxRetries?: number;
  /** First backoff delay; doubles per retry up to `retryMaxDelayMs` (defaults 250 and 4000). */
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
  /** Per-attempt time limit (default 30 s). */
  requestTimeoutMs?: number;
  /** Replaces the global fetch (for a proxy agent, say). */
  fetch?: typeof fetch;
}

export type MlflowErrorCode =
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'not_mlflow'
  | 'unreachable'
  | 'bad_request'
  | 'server_error';

/** Every failure of the client; `message` is one line naming the URL and what to do. */
export class MlflowError extends Error {
  constructor(
    readonly code: MlflowErrorCode,
    message: string,
    readonly url: string,
    readonly status?: number,
    /** MLflow's own `error_code`, e.g. `RESOURCE_ALREADY_EXISTS`. */
    readonly mlflowCode?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MlflowError';
  }
}

/** Auth options from the variables the Python client reads; the caller passes its environment. */
export function mlflowAuthFromEnv(env: Record<string, string | undefined>): MlflowAuth | undefined {
  const token = env.MLFLOW_TRACKING_TOKEN;
  if (token) return { kind: 'bearer', token };
  const username = env.MLFLOW_TRACKING_USERNAME;
  const password = env.MLFLOW_TRACKING_PASSWORD;
  if (username && password !== undefined) return { kind: 'basic', username, password };
  return undefined;
}

const API = '/api/2.0/mlflow';
/** What the SQL stores keep in place of an infinity. */
const STORED_INFINITY = 1.7976931348623157e308;
const RUN_STATUSES: ReadonlySet<string> = new Set(['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED']);
/** MLflow's log-batch limits per request. */
const BATCH_MAX_METRICS = 1000;
const BATCH_MAX_PARAMS = 100;
const BATCH_MAX_TAGS = 100;

export class MlflowClient {
  readonly trackingUri: string;
  private readonly authHeader: string | undefined;
  private readonly maxRetries: number;
  private readonly retryBaseDelayMs: number;
  private readonly retryMaxDelayMs: number;
  private readonly requestTimeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: MlflowClientOptions) {
    const uri = options.trackingUri.trim().replace(/\/+$/, '');
    if (!/^https?:\/\//i.test(uri)) {
      throw new MlflowError(
        'not_mlflow',
        `${uri} is not an http(s) tracking URI; the REST client needs http://host:port (start a tracking server for file or database stores)`,
        uri,
      );
    }
    this.trackingUri = uri;
    this.authHeader = authorization(options.auth);
    this.maxRetries = options.maxRetries ?? 4;
    this.retryBaseDelayMs = options.retryBaseDelayMs ?? 250;
    this.retryMaxDelayMs = options.retryMaxDelayMs ?? 4000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.fetchImpl = options.fetch ?? fetch;
  }

  // --- server -------------------------------------------------------------------------------

  /** Resolves when `/health` answers `OK`. */
  async health(signal?: AbortSignal): Promise<void> {
    const text = await this.send({ method: 'GET', path: '/health' }, signal);
    if (text.trim() !== 'OK') throw this.notMlflow('/health', `/health answered "${oneLine(text, 40)}"`);
  }

  /** The server's MLflow version (`/version`). */
  async serverVersion(signal?: AbortSignal): Promise<string> {
    const text = (await this.send({ method: 'GET', path: '/version' }, signal)).trim();
    if (!/^\d+\.\d+/.test(text)) throw this.notMlflow('/version', `/version answered "${oneLine(text, 40)}"`);
    return text;
  }

  // --- experiments --------------------------------------------------------------------------

  async getExperiment(experimentId: string, signal?: AbortSignal): Promise<MlflowExperiment> {
    const query = { experiment_id: experimentId };
    return this.api('GET', '/experiments/get', { query }, (json) => parseExperiment(field(json, 'experiment')), signal);
  }

  /** The experiment with this name, or undefined when there is none. */
  async getExperimentByName(name: string, signal?: AbortSignal): Promise<MlflowExperiment | undefined> {
    try {
      const query = { experiment_name: name };
      return await this.api('GET', '/experiments/get-by-name', { query }, (json) => parseExperiment(field(json, 'experiment')), signal);
    } catch (error) {
      if (error instanceof MlflowError && error.code === 'not_found') return undefined;
      throw error;
    }
  }

  /** Creates an experiment and returns its id. */
  async createExperiment(
    name: string,
    options: { artifactLocation?: string; tags?: Record<string, string> } = {},
    signal?: AbortSignal,
  ): Promise<string> {
    const body = {
      name,
      artifact_location: options.artifactLocation,
      tags: options.tags ? toKeyValues(options.tags) : undefined,
    };
    return this.api('POST', '/experiments/create', { body }, (json) => asString(json.experiment_id, 'experiment_id'), signal);
  }

  /** The id of the named experiment, created if missing (safe when two callers race). */
  async getOrCreateExperiment(name: string, signal?: AbortSignal): Promise<string> {
    const existing = await this.getExperimentByName(name, signal);
    if (existing) return existing.experimentId;
    try {
      return await this.createExperiment(name, {}, signal);
    } catch (error) {
      if (error instanceof MlflowError && error.mlflowCode === 'RESOURCE_ALREADY_EXISTS') {
        const created = await this.getExperimentByName(name, signal);
        if (created) return created.experimentId;
      }
      throw error;
    }
  }

  async searchExperimentsPage(
    options: SearchExperimentsOptions = {},
    pageToken?: string,
    signal?: AbortSignal,
  ): Promise<Page<MlflowExperiment>> {
    const body = {
      // MLflow's server reads a missing page size as 0 here and refuses it (runs/search has a default).
      max_results: options.pageSize ?? 1000,
      filter: options.filter,
      order_by: options.orderBy,
      view_type: options.viewType,
      page_token: pageToken,
    };
    return this.api(
      'POST',
      '/experiments/search',
      { body },
      (json) => ({ items: asArray(json.experiments, 'experiments').map(parseExperiment), ...nextToken(json) }),
      signal,
    );
  }

  searchExperimentsPages(
    options: SearchExperimentsOptions = {},
    signal?: AbortSignal,
  ): AsyncGenerator<Page<MlflowExperiment>> {
    return this.pages((token) => this.searchExperimentsPage(options, token, signal), '/experiments/search');
  }

  async searchAllExperiments(options: SearchExperimentsOptions = {}, signal?: AbortSignal): Promise<MlflowExperiment[]> {
    return collect(this.searchExperimentsPages(options, signal));
  }

  // --- runs: reads --------------------------------------------------------------------------

  async getRun(runId: string, signal?: AbortSignal): Promise<MlflowRun> {
    return this.api('GET', '/runs/get', { query: { run_id: runId } }, (json) => parseRun(field(json, 'run')), signal);
  }

  async searchRunsPage(options: SearchRunsOptions, pageToken?: string, signal?: AbortSignal): Promise<Page<MlflowRun>> {
    const body = {
      experiment_ids: options.experimentIds,
      filter: options.filter,
      order_by: options.orderBy,
      max_results: options.pageSize,
      run_view_type: options.runViewType,
      page_token: pageToken,
    };
    return this.api(
      'POST',
      '/runs/search',
      { body },
      (json) => ({ items: asArray(json.runs, 'runs').map(parseRun), ...nextToken(json) }),
      signal,
    );
  }

  /** Every page of a run search, fetched as the caller iterates. */
  searchRunsPages(options: SearchRunsOptions, signal?: AbortSignal): AsyncGenerator<Page<MlflowRun>> {
    return this.pages((token) => this.searchRunsPage(options, token, signal), '/runs/search');
  }

  async searchAllRuns(options: SearchRunsOptions, signal?: AbortSignal): Promise<MlflowRun[]> {
    return collect(this.searchRunsPages(options, signal));
  }

  /** Every logged value of one metric of a run, in the server's order (step, then timestamp). */
  async getMetricHistory(runId: string, key: string, signal?: AbortSignal): Promise<MlflowMetric[]> {
    const fetchPage = async (token: string | undefined): Promise<Page<MlflowMetric>> => {
      const query = { run_id: runId, metric_key: key, page_token: token };
      return this.api(
        'GET',
        '/metrics/get-history',
        { query },
        (json) => ({ items: asArray(json.metrics, 'metrics').map(parseMetric), ...nextToken(json) }),
        signal,
      );
    };
    return collect(this.pages(fetchPage, '/metrics/get-history'));
  }

  // --- runs: writes -------------------------------------------------------------------------

  async createRun(options: CreateRunOptions, signal?: AbortSignal): Promise<MlflowRun> {
    const tags: Record<string, string> = { ...options.tags };
    if (options.parentRunId !== undefined) tags['mlflow.parentRunId'] = options.parentRunId;
    const body = {
      experiment_id: options.experimentId,
      run_name: options.runName,
      user_id: options.userId,
      // int64 on the wire: a fraction makes the server drop the whole request's fields silently.
      start_time: Math.round(options.startTime ?? Date.now()),
      tags: toKeyValues(tags),
    };
    const create = (retries?: number): Promise<MlflowRun> => this.api('POST', '/runs/create', { body, retries }, (json) => parseRun(field(json, 'run')), signal);
    if (options.sameRunFilter === undefined) return create();
    for (let attempt = 0; ; attempt++) {
      try {
        return await create(0);
      } catch (error) {
        // Refused outright (4xx): nothing was made. Else the run may exist.
        if (!(error instanceof MlflowError) || (error.code !== 'unreachable' && error.code !== 'server_error') || attempt >= this.maxRetries) throw error;
        await sleep(this.backoff(attempt + 1), signal);
        const [made] = (await this.searchRunsPage({ experimentIds: [options.experimentId], filter: options.sameRunFilter, pageSize: 1 }, undefined, signal)).items;
        if (made) return made;
      }
    }
  }

  async updateRun(runId: string, update: UpdateRunOptions, signal?: AbortSignal): Promise<RunInfo> {
    const body = { run_id: runId, status: update.status, end_time: update.endTime === undefined ? undefined : Math.round(update.endTime), run_name: update.runName };
    return this.api('POST', '/runs/update', { body }, (json) => parseRunInfo(field(json, 'run_info')), signal);
  }

  /** Ends a run: its status and an end time (now unless given). */
  async finishRun(runId: string, status: RunStatus = 'FINISHED', endTime = Date.now(), signal?: AbortSignal): Promise<RunInfo> {
    return this.updateRun(runId, { status, endTime }, signal);
  }

  /** Logs metrics, params and tags; split into as many requests as MLflow's limits need. */
  async logBatch(runId: string, batch: LogBatchInput, signal?: AbortSignal): Promise<void> {
    const now = Date.now();
    const metrics = (batch.metrics ?? []).map((m) => ({
      key: m.key,
      value: m.value,
      timestamp: Math.round(m.timestamp ?? now),
      step: m.step ?? 0,
    }));
    const params = toKeyValues(batch.params ?? {});
    const tags = toKeyValues(batch.tags ?? {});
    do {
      const body = {
        run_id: runId,
        metrics: metrics.splice(0, BATCH_MAX_METRICS),
        params: params.splice(0, BATCH_MAX_PARAMS),
        tags: tags.splice(0, BATCH_MAX_TAGS),
      };
      await this.api('POST', '/runs/log-batch', { body }, ignoreBody, signal);
    } while (metrics.length > 0 || params.length > 0 || tags.length > 0);
  }

  /**
   * Uploads a small text file into a run's artifacts through the server's artifact proxy: the
   * `mlflow-artifacts:` URIs a server started with `--serve-artifacts` gives its runs.
   */
  async uploadArtifact(artifactUri: string, name: string, text: string, signal?: AbortSignal): Promise<void> {
    const match = /^mlflow-artifacts:(?:\/\/[^/]*)?\/(.+)$/.exec(artifactUri);
    if (!match?.[1]) throw new MlflowError('bad_request', `${artifactUri} is not served by the tracking server's artifact proxy`, artifactUri);
    const path = `/api/2.0/mlflow-artifacts/artifacts/${match[1].replace(/\/+$/, '')}/${encodeURIComponent(name)}`;
    await this.send({ method: 'PUT', path, raw: { body: text, contentType: 'text/plain; charset=utf-8' } }, signal);
  }

  async setTag(runId: string, key: string, value: string, signal?: AbortSignal): Promise<void> {
    await this.api('POST', '/runs/set-tag', { body: { run_id: runId, key, value } }, ignoreBody, signal);
  }

  // --- plumbing -----------------------------------------------------------------------------

  private async *pages<T>(
    fetchPage: (token: string | undefined) => Promise<Page<T>>,
    path: string,
  ): AsyncGenerator<Page<T>> {
    let token: string | undefined;
    do {
      const page = await fetchPage(token);
      if (page.nextPageToken !== undefined && page.nextPageToken === token) {
        throw new MlflowError(
          'server_error',
          `${this.trackingUri}${API}${path} returned the same page token twice; the server's paging is broken, check its version`,
          `${this.trackingUri}${API}${path}`,
        );
      }
      token = page.nextPageToken;
      yield page;
    } while (token !== undefined);
  }

  /** A JSON API call; the answer is parsed with `parse`, and an answer of the wrong shape is `not_mlflow`. */
  private async api<T>(
    method: 'GET' | 'POST',
    path: string,
    request: { query?: Record<string, string | number | undefined>; body?: unknown; retries?: number },
    parse: (json: Record<string, unknown>) => T,
    signal?: AbortSignal,
  ): Promise<T> {
    const text = await this.send({ method, path: API + path, ...request }, signal);
    let json: unknown;
    try {
      json = parseMlflowJson(text);
    } catch {
      throw this.notMlflow(API + path, describeBody(text));
    }
    if (!isObject(json)) throw this.notMlflow(API + path, 'the answer is not a JSON object');
    try {
      return parse(json);
    } catch (error) {
      if (error instanceof ShapeError) throw this.notMlflow(API + path, `unexpected answer: ${error.message}`);
      throw error;
    }
  }

  /**
   * One request with retries: connection errors, timeouts, 429 and 5xx are retried with
   * exponential backoff; other 4xx fail at once. Resolves with the body of a 2xx answer.
   * Writes are retried too, as MLflow's Python client does; a `runs/create` with a `sameRunFilter`
   * looks for the run a lost answer made before it tries again.
   */
  private async send(
    request: {
      method: 'GET' | 'POST' | 'PUT';
      path: string;
      query?: Record<string, string | number | undefined>;
      body?: unknown;
      /** A body sent as it is, instead of JSON. */
      raw?: { body: string; contentType: string };
      /** Instead of the client's maxRetries. */
      retries?: number;
    },
    signal?: AbortSignal,
  ): Promise<string> {
    const url = this.trackingUri + request.path;
    const target = url + queryString(request.query);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.authHeader) headers.authorization = this.authHeader;
    let payload: string | undefined;
    if (request.raw) {
      headers['content-type'] = request.raw.contentType;
      payload = request.raw.body;
    } else if (request.body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(request.body, nonFiniteAsString);
    }
    let lastError: MlflowError | undefined;
    const retries = request.retries ?? this.maxRetries;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) await sleep(this.backoff(attempt), signal);
      signal?.throwIfAborted();
      const timeout = AbortSignal.timeout(this.requestTimeoutMs);
      const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
      let status: number;
      let text: string;
      let contentType: string;
      try {
        const response = await this.fetchImpl(target, { method: request.method, headers, body: payload, signal: combined });
        status = response.status;
        contentType = response.headers.get('content-type') ?? '';
        text = await response.text();
      } catch (error) {
        signal?.throwIfAborted();
        const why = timeout.aborted ? `no answer within ${this.requestTimeoutMs} ms` : networkReason(error);
        lastError = new MlflowError(
          'unreachable',
          `cannot reach MLflow at ${url} (${why}) after ${attempt + 1} attempt(s); start the tracking server or fix the tracking URI (MLFLOW_TRACKING_URI)`,
          url,
          undefined,
          undefined,
          { cause: error },
        );
        continue;
      }
      if (status >= 200 && status < 300) return text;
      const failure = this.httpError(url, status, contentType, text, attempt + 1);
      if (status === 429 || status >= 500) {
        lastError = failure;
        continue;
      }
      throw failure;
    }
    throw lastError ?? new MlflowError('unreachable', `cannot reach MLflow at ${url}`, url);
  }

  private backoff(retry: number): number {
    const ceiling = Math.min(this.retryMaxDelayMs, this.retryBaseDelayMs * 2 ** (retry - 1));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  private httpError(url: string, status: number, contentType: string, text: string, attempts: number): MlflowError {
    let errorCode: string | undefined;
    let serverMessage: string | undefined;
    try {
      const json: unknown = parseMlflowJson(text);
      if (isObject(json) && typeof json.error_code === 'string') {
        errorCode = json.error_code;
        serverMessage = typeof json.message === 'string' ? oneLine(json.message, 300) : undefined;
      }
    } catch {
      // Not JSON: a proxy's or another server's page.
    }
    const said = serverMessage ? `: ${serverMessage}` : '';
    if (status === 401) {
      return new MlflowError(
        'unauthorized',
        `${url} answered 401 Unauthorized${said}; set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, for this tracking server`,
        url,
        status,
        errorCode,
      );
    }
    if (status === 403) {
      return new MlflowError(
        'forbidden',
        `${url} answered 403 Forbidden${said}; this account lacks permission here, ask the server's administrator or use another account`,
        url,
        status,
        errorCode,
      );
    }
    if (errorCode === 'RESOURCE_DOES_NOT_EXIST' || (status === 404 && errorCode !== undefined)) {
      return new MlflowError(
        'not_found',
        `${url} answered 404 ${errorCode ?? 'Not Found'}${said}; check the experiment or run id (it may have been deleted)`,
        url,
        status,
        errorCode,
      );
    }
    if (status === 404) {
      // MLflow answers unknown ids with a JSON error; a bare 404 means the endpoint is missing.
      return this.notMlflow(url.slice(this.trackingUri.length), `404 for an MLflow endpoint, ${describeBody(text, contentType)}`);
    }
    if (status === 429 || status >= 500) {
      return new MlflowError(
        'server_error',
        `${url} failed with ${status}${errorCode ? ` ${errorCode}` : ''}${said} after ${attempts} attempt(s); check the tracking server's log`,
        url,
        status,
        errorCode,
      );
    }
    return new MlflowError(
      'bad_request',
      `${url} rejected the request with ${status}${errorCode ? ` ${errorCode}` : ''}${said || `: ${describeBody(text, contentType)}`}`,
      url,
      status,
      errorCode,
    );
  }

  private notMlflow(path: string, why: string): MlflowError {
    const url = this.trackingUri + path;
    return new MlflowError(
      'not_mlflow',
      `${url} answered but is not an MLflow tracking server (${why}); check the tracking URI: scheme, host, port and path prefix`,
      url,
    );
  }
}

// --- JSON ---------------------------------------------------------------------------------------

/**
 * Parses an MLflow answer. Plain JSON first; failing that, bare `NaN`, `Infinity` and
 * `-Infinity` tokens (which Python's json module writes) are quoted and parsing is retried.
 */
export function parseMlflowJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    if (!/NaN|Infinity/.test(text)) throw error;
    return JSON.parse(quoteNonFiniteTokens(text));
  }
}

function quoteNonFiniteTokens(text: string): string {
  let out = '';
  let copied = 0;
  let inString = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i += 2;
      else {
        if (c === '"') inString = false;
        i += 1;
      }
      continue;
    }
    if (c === '"') {
      inString = true;
      i += 1;
      continue;
    }
    const token = ['NaN', 'Infinity', '-Infinity'].find((t) => text.startsWith(t, i));
    if (token) {
      out += `${text.slice(copied, i)}"${token}"`;
      i += token.length;
      copied = i;
      continue;
    }
    i += 1;
  }
  return out + text.slice(copied);
}

function nonFiniteAsString(_key: string, value: unknown): unknown {
  if (typeof value !== 'number' || Number.isFinite(value)) return value;
  if (Number.isNaN(value)) return 'NaN';
  return value > 0 ? 'Infinity' : '-Infinity';
}

/** A metric value from the wire: a number, or MLflow's spelling of a non-finite one. */
export function metricValue(raw: unknown): number {
  if (typeof raw === 'number') {
    if (raw >= STORED_INFINITY) return Infinity;
    if (raw <= -STORED_INFINITY) return -Infinity;
    return raw;
  }
  if (raw === 'NaN') return Number.NaN;
  if (raw === 'Infinity') return Infinity;
  if (raw === '-Infinity') return -Infinity;
  if (typeof raw === 'string' && raw.trim() !== '' && !Number.isNaN(Number(raw))) return metricValue(Number(raw));
  throw new ShapeError(`metric value ${JSON.stringify(raw)}`);
}

// --- DTO parsing --------------------------------------------------------------------------------

/** An answer whose JSON lacks the expected shape; surfaced as `not_mlflow`. */
class ShapeError extends Error {}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function field(json: Record<string, unknown>, name: string): Record<string, unknown> {
  const value = json[name];
  if (!isObject(value)) throw new ShapeError(`no "${name}" object`);
  return value;
}

function asString(value: unknown, what: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  throw new ShapeError(`no string "${what}"`);
}

function optString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** int64 fields arrive as numbers or, from protobuf's JSON mapping, as strings. */
function optInt(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return Number(value);
  return undefined;
}

function asArray(value: unknown, what: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ShapeError(`"${what}" is not a list`);
  return value;
}

function keyValues(value: unknown, what: string): Record<string, string> {
  const entries = asArray(value, what).map((item): [string, string] => {
    if (!isObject(item)) throw new ShapeError(`an entry of "${what}" is not an object`);
    return [asString(item.key, `${what}.key`), typeof item.value === 'string' ? item.value : String(item.value ?? '')];
  });
  return Object.fromEntries(entries);
}

function lifecycle(value: unknown): LifecycleStage {
  return value === 'deleted' ? 'deleted' : 'active';
}

function parseExperiment(value: unknown): MlflowExperiment {
  if (!isObject(value)) throw new ShapeError('an experiment is not an object');
  return {
    experimentId: asString(value.experiment_id, 'experiment_id'),
    name: asString(value.name, 'name'),
    artifactLocation: optString(value.artifact_location),
    lifecycleStage: lifecycle(value.lifecycle_stage),
    creationTime: optInt(value.creation_time),
    lastUpdateTime: optInt(value.last_update_time),
    tags: keyValues(value.tags, 'tags'),
  };
}

function parseRunInfo(info: Record<string, unknown>): RunInfo {
  const status = asString(info.status, 'status');
  if (!RUN_STATUSES.has(status)) throw new ShapeError(`unknown run status ${status}`);
  return {
    runId: asString(info.run_id ?? info.run_uuid, 'run_id'),
    experimentId: asString(info.experiment_id, 'experiment_id'),
    runName: optString(info.run_name),
    userId: optString(info.user_id),
    status: status as RunStatus,
    startTime: optInt(info.start_time),
    endTime: optInt(info.end_time),
    artifactUri: optString(info.artifact_uri),
    lifecycleStage: lifecycle(info.lifecycle_stage),
  };
}

function parseRun(value: unknown): MlflowRun {
  if (!isObject(value)) throw new ShapeError('a run is not an object');
  const data = value.data === undefined ? {} : value.data;
  if (!isObject(data)) throw new ShapeError('run data is not an object');
  const metrics = asArray(data.metrics, 'metrics').map((m): [string, number] => {
    const metric = parseMetric(m);
    return [metric.key, metric.value];
  });
  return {
    info: parseRunInfo(field(value, 'info')),
    data: {
      params: keyValues(data.params, 'params'),
      metrics: Object.fromEntries(metrics),
      tags: keyValues(data.tags, 'tags'),
    },
  };
}

function parseMetric(value: unknown): MlflowMetric {
  if (!isObject(value)) throw new ShapeError('a metric is not an object');
  return {
    key: asString(value.key, 'metric key'),
    value: metricValue(value.value),
    timestamp: optInt(value.timestamp) ?? 0,
    step: optInt(value.step) ?? 0,
  };
}

function nextToken(json: Record<string, unknown>): { nextPageToken?: string } {
  const token = optString(json.next_page_token);
  return token === undefined ? {} : { nextPageToken: token };
}

// --- small helpers ------------------------------------------------------------------------------

function ignoreBody(): void {}

async function collect<T>(pages: AsyncGenerator<Page<T>>): Promise<T[]> {
  const all: T[] = [];
  for await (const page of pages) all.push(...page.items);
  return all;
}

function toKeyValues(record: Record<string, string>): Array<{ key: string; value: string }> {
  return Object.entries(record).map(([key, value]) => ({ key, value }));
}

function authorization(auth: MlflowAuth | undefined): string | undefined {
  if (!auth) return undefined;
  if (auth.kind === 'bearer') return `Bearer ${auth.token}`;
  return `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
}

function queryString(query: Record<string, string | number | undefined> | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
  const text = params.toString();
  return text ? `?${text}` : '';
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function describeBody(text: string, contentType = ''): string {
  if (/html/i.test(contentType) || /^\s*<(!doctype|html|head|body)/i.test(text)) return 'it sent an HTML page';
  if (text.trim() === '') return 'it sent an empty answer';
  return `it sent "${oneLine(text, 60)}"`;
}

function networkReason(error: unknown): string {
  const cause: unknown = error instanceof Error ? error.cause : undefined;
  const codeOf = (e: unknown): string | undefined =>
    typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
  const nested = cause instanceof AggregateError ? cause.errors[0] : undefined;
  return codeOf(cause) ?? codeOf(nested) ?? (error instanceof Error ? oneLine(error.message, 80) : String(error));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
