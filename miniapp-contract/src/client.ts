/**
 * The Huzhu API client for the mini-program's runtime (`wx.request`, `wx.uploadFile`,
 * `wx.login`). Every path, parameter, body and answer is typed from `schema.ts`, which is
 * generated from `openapi.json` (`npm run generate`): this file declares no API type of its own.
 *
 * ```ts
 * import { createClient, ApiError } from './client.js';
 * const api = createClient({ baseUrl: 'https://huzhu.example.cn' });
 * await api.signIn();                                    // wx.login → POST /auth/wechat
 * const schemes = await api.get('/api/v1/schemes');
 * const claim = await api.get('/api/v1/claims/{id}', { path: { id } });
 * ```
 *
 * - The token is kept in the mini-program's storage. When the server answers 401
 *   `token_expired`, the client signs in again silently with a fresh `wx.login` code and
 *   repeats the request once.
 * - Every refusal becomes an {@link ApiError} with the server's `code`, `message` and `details`;
 *   a request that never got an answer (offline, timeout) becomes a {@link NetworkError}.
 * - `createClaim` and `submitClaim` send an `Idempotency-Key` (generated unless given) and
 *   reuse it when they repeat, so a flaky network never files or submits twice.
 */
import type { components, paths } from './schema.js';

/** Every schema of the document, e.g. `Schemas['ClaimDetail']`. */
export type Schemas = components['schemas'];
/** The body of every error answer. */
export type ErrorBody = Schemas['ErrorBody'];

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** The paths that have an operation for `M`. */
export type PathsFor<M extends Method> = {
  [P in keyof paths]: paths[P][M] extends { responses: unknown } ? P : never;
}[keyof paths];

/** The operation at `P` for `M`. */
export type Operation<P extends keyof paths, M extends Method> = Extract<
  paths[P][M],
  { responses: unknown; parameters: unknown }
>;

type SuccessStatus = 200 | 201 | 202 | 204;
type Json<R> = R extends { content: { 'application/json': infer T } } ? T : undefined;

/** What a successful call answers (the JSON of its 2xx responses). */
export type Success<P extends keyof paths, M extends Method> = Json<
  Operation<P, M>['responses'][Extract<keyof Operation<P, M>['responses'], SuccessStatus>]
>;

/** The JSON request body of an operation (`never` when it takes none). */
export type Body<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { requestBody?: infer RB }
    ? [NonNullable<RB>] extends [never]
      ? never
      : NonNullable<RB> extends { content: { 'application/json': infer B } }
        ? B
        : never
    : never;

/** The operations that take one file as `multipart/form-data` (what `wx.uploadFile` sends). */
export type UploadPaths = {
  [P in PathsFor<'post'>]: Operation<P, 'post'> extends { requestBody: { content: { 'multipart/form-data': unknown } } } ? P : never;
}[PathsFor<'post'>];

type Parameters<P extends keyof paths, M extends Method> = Operation<P, M>['parameters'];
type Given<T> = [T] extends [never] ? false : [T] extends [undefined] ? false : true;

/** Path, query, body and headers of one call; required exactly when the operation needs them. */
export type CallOptions<P extends keyof paths, M extends Method> = (Given<
  Parameters<P, M> extends { path?: infer X } ? X : never
> extends true
  ? { path: Parameters<P, M> extends { path: infer X } ? X : never }
  : { path?: undefined }) &
  (Given<Parameters<P, M> extends { query?: infer X } ? X : never> extends true
    ? { query?: Parameters<P, M> extends { query?: infer X } ? X : never }
    : { query?: undefined }) &
  (Given<Body<P, M>> extends true ? { body: Body<P, M> } : { body?: undefined }) & {
    /** Extra headers (e.g. `Idempotency-Key`). */
    header?: Record<string, string>;
  };

type OptionalArg<P extends keyof paths, M extends Method> =
  {} extends CallOptions<P, M> ? [options?: CallOptions<P, M>] : [options: CallOptions<P, M>];

/** The server refused the request: `status` and the stable `code` tell a program what happened. */
export class ApiError extends Error {
  readonly name = 'ApiError';
  constructor(
    /** HTTP status, e.g. 409. */
    readonly status: number,
    /** Stable snake_case code, e.g. `version_conflict`, `materials_missing`, `token_expired`. */
    readonly code: string,
    /** Human-readable (Chinese first) — show it to the person. */
    message: string,
    /** Structured context: the field, the missing materials, the current version … */
    readonly details: Record<string, unknown>,
    /** The `x-request-id` of the answer, for support. */
    readonly requestId?: string,
  ) {
    super(message);
  }

  /** Whether this is the refusal `code` (e.g. `isCode('version_conflict')`). */
  isCode(code: string): boolean {
    return this.code === code;
  }
}

/** The request got no answer (offline, timeout, DNS): `errMsg` is WeChat's. */
export class NetworkError extends Error {
  readonly name = 'NetworkError';
  constructor(readonly errMsg: string) {
    super(errMsg);
  }
}

/** Whether `e` is an {@link ApiError}, optionally with one of `codes`. */
export function isApiError(e: unknown, ...codes: string[]): e is ApiError {
  return e instanceof ApiError && (codes.length === 0 || codes.includes(e.code));
}

/** One answer as the client saw it (for logging, or for checking it against the document). */
export interface Exchange {
  method: Method;
  /** The path template, e.g. `/api/v1/claims/{id}`. */
  path: string;
  url: string;
  status: number;
  header: Record<string, string>;
  /** Parsed JSON, a string, or an ArrayBuffer for downloads. */
  data: unknown;
}

/** Where the token lives between launches (default: the mini-program's storage). */
export interface TokenStore {
  get(): string | undefined;
  set(token: string | undefined): void;
}

export interface ClientOptions {
  /** e.g. `https://huzhu.example.cn` (no trailing slash). */
  baseUrl: string;
  /** Default: `wx.getStorageSync`/`wx.setStorageSync` under `storageKey`. */
  tokenStore?: TokenStore;
  /** Storage key of the default token store. */
  storageKey?: string;
  /** Milliseconds before a request gives up (default 15000). */
  timeout?: number;
  /** Called with every answer (status, headers, body). */
  onExchange?: (exchange: Exchange) => void;
}

/** First sign-in: binds this WeChat to a staff account or a member. */
export type Binding = Omit<Schemas['WeChatSignIn'], 'code'>;

const JSON_TYPE = 'application/json';

/** A random UUID for `Idempotency-Key`. */
export function newIdempotencyKey(): string {
  const bytes = new Uint8Array(16);
  const c = (globalThis as { crypto?: { getRandomValues?(b: Uint8Array): Uint8Array } }).crypto;
  if (c?.getRandomValues) {
    c.getRandomValues(bytes);
  } else {
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  }
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function storageStore(key: string): TokenStore {
  return {
    get: () => {
      const value: unknown = wx.getStorageSync(key);
      return typeof value === 'string' && value !== '' ? value : undefined;
    },
    set: (token) => (token ? wx.setStorageSync(key, token) : wx.removeStorageSync(key)),
  };
}

function lowerKeys(header: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(header ?? {})) out[k.toLowerCase()] = String(v);
  return out;
}

function fill(path: string, params: Record<string, unknown> | undefined): string {
  return path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = params?.[name];
    if (value === undefined || value === null) throw new TypeError(`missing path parameter ${name}`);
    return encodeURIComponent(String(value));
  });
}

function queryString(query: Record<string, unknown> | undefined): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v === undefined || v === null) continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

function parseMaybeJson(data: unknown): unknown {
  if (typeof data !== 'string') return data;
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
}

function toApiError(status: number, data: unknown, header: Record<string, string>): ApiError {
  const body = parseMaybeJson(data) as Partial<ErrorBody> | undefined;
  const error = body && typeof body === 'object' ? body.error : undefined;
  if (error && typeof error.code === 'string') {
    return new ApiError(
      status,
      error.code,
      error.message ?? '',
      (error.details as Record<string, unknown>) ?? {},
      header['x-request-id'],
    );
  }
  return new ApiError(status, `http_${status}`, `HTTP ${status}`, {}, header['x-request-id']);
}

interface RawResponse {
  status: number;
  header: Record<string, string>;
  data: unknown;
}

/** The client. Create one per mini-program (`createClient`). */
export class HuzhuClient {
  private readonly tokens: TokenStore;
  private readonly timeout: number;
  private signingIn: Promise<Schemas['TokenResponse']> | undefined;

  constructor(private readonly options: ClientOptions) {
    this.tokens = options.tokenStore ?? storageStore(options.storageKey ?? 'huzhu.token');
    this.timeout = options.timeout ?? 15000;
  }

  /** The stored token, if any. */
  get token(): string | undefined {
    return this.tokens.get();
  }

  /** Forgets the token (sign out). */
  signOut(): void {
    this.tokens.set(undefined);
  }

  /**
   * Signs in with a fresh `wx.login` code. An unbound WeChat answers `ApiError`
   * `account_not_bound`: ask for the invitation code (staff) or name and ID number (members)
   * and call again with them.
   */
  async signIn(binding: Binding = {}): Promise<Schemas['TokenResponse']> {
    const code = await wxLogin();
    const token = await this.call('post', '/api/v1/auth/wechat', {
      body: { ...binding, code },
    } as CallOptions<'/api/v1/auth/wechat', 'post'>, false);
    this.tokens.set(token.token);
    return token;
  }

  /** Demo servers only: sign in as a demo account without WeChat. */
  async devLogin(account: string): Promise<Schemas['TokenResponse']> {
    const token = await this.call('post', '/api/v1/auth/dev-login', { body: { account } }, false);
    this.tokens.set(token.token);
    return token;
  }

  /** Binds the member's phone number with the code of the `getPhoneNumber` button event. */
  bindPhone(code: string): Promise<Schemas['BindPhoneResponse']> {
    return this.post('/api/v1/me/phone', { body: { code } });
  }

  /** Files a draft claim; a repeat with the same `idempotencyKey` yields the same claim. */
  createClaim(
    body: Schemas['NewClaimRequest'],
    idempotencyKey: string = newIdempotencyKey(),
  ): Promise<Schemas['ClaimDetail']> {
    return this.post('/api/v1/claims', { body, header: { 'Idempotency-Key': idempotencyKey } });
  }

  /** Submits a draft (or a returned claim) at `version`; idempotent under `idempotencyKey`. */
  submitClaim(
    id: string,
    version: number,
    idempotencyKey: string = newIdempotencyKey(),
  ): Promise<Schemas['ClaimDetail']> {
    return this.post('/api/v1/claims/{id}/submit', {
      path: { id },
      body: { version },
      header: { 'Idempotency-Key': idempotencyKey },
    });
  }

  /** Uploads one photo of a claim (`wx.chooseMedia`'s `tempFilePath`) as `category`. */
  uploadMaterial(
    claimId: string,
    category: string,
    filePath: string,
  ): Promise<Success<'/api/v1/claims/{id}/materials', 'post'>> {
    return this.uploadFile('/api/v1/claims/{id}/materials', { path: { id: claimId }, query: { category } }, filePath);
  }

  /**
   * Sends one file to a multipart operation with `wx.uploadFile`, in the field `file` (the
   * form's other fields, e.g. an enrolment's `scheme_code`, go in `formData`).
   */
  uploadFile<P extends UploadPaths>(
    path: P,
    options: {
      path?: Record<string, string>;
      query?: Record<string, string | number>;
      formData?: Record<string, string | number>;
    },
    filePath: string,
  ): Promise<Success<P, 'post'>> {
    const url = fill(path, options.path) + queryString(options.query);
    return this.withSession(() => this.upload<Success<P, 'post'>>(path, url, filePath, options.formData));
  }

  /** `GET` an operation; the answer is typed from the document. */
  get<P extends PathsFor<'get'>>(path: P, ...options: OptionalArg<P, 'get'>): Promise<Success<P, 'get'>> {
    return this.call('get', path, options[0]);
  }

  post<P extends PathsFor<'post'>>(path: P, ...options: OptionalArg<P, 'post'>): Promise<Success<P, 'post'>> {
    return this.call('post', path, options[0]);
  }

  put<P extends PathsFor<'put'>>(path: P, ...options: OptionalArg<P, 'put'>): Promise<Success<P, 'put'>> {
    return this.call('put', path, options[0]);
  }

  patch<P extends PathsFor<'patch'>>(path: P, ...options: OptionalArg<P, 'patch'>): Promise<Success<P, 'patch'>> {
    return this.call('patch', path, options[0]);
  }

  delete<P extends PathsFor<'delete'>>(path: P, ...options: OptionalArg<P, 'delete'>): Promise<Success<P, 'delete'>> {
    return this.call('delete', path, options[0]);
  }

  /** A file (`.xlsx`, `.csv`, a photo) as bytes. */
  download<P extends PathsFor<'get'>>(path: P, ...options: OptionalArg<P, 'get'>): Promise<ArrayBuffer> {
    const o = (options[0] ?? {}) as { path?: Record<string, unknown>; query?: Record<string, unknown> };
    const url = fill(path, o.path) + queryString(o.query);
    return this.withSession(async () => {
      const res = await this.send('get', path, url, undefined, {}, 'arraybuffer');
      return res.data as ArrayBuffer;
    });
  }

  /**
   * Any JSON operation. `authenticated = false` sends no token (sign-in). With a token that has
   * expired, signs in again once with `wx.login` and repeats the request.
   */
  async call<P extends keyof paths, M extends Method>(
    method: M,
    path: P,
    options?: CallOptions<P, M>,
    authenticated = true,
  ): Promise<Success<P, M>> {
    const o = (options ?? {}) as {
      path?: Record<string, unknown>;
      query?: Record<string, unknown>;
      body?: unknown;
      header?: Record<string, string>;
    };
    const url = fill(path as string, o.path) + queryString(o.query);
    const header = { ...(o.header ?? {}) };
    const run = async () =>
      (await this.send(method, path as string, url, o.body, header, 'text', authenticated)).data as Success<P, M>;
    return authenticated ? this.withSession(run) : run();
  }

  /**
   * Runs `request`; on 401 `token_expired` (or `token_revoked`: the account signed out
   * everywhere, so a stolen token is dead while this phone's WeChat still signs in) signs in
   * again and repeats it once. Requests that
   * were waiting with the same expired token share one sign-in; one whose token was already
   * renewed meanwhile just repeats.
   */
  private async withSession<T>(request: () => Promise<T>): Promise<T> {
    const used = this.tokens.get();
    try {
      return await request();
    } catch (e) {
      if (!isApiError(e, 'token_expired') && !isApiError(e, 'token_revoked')) throw e;
      if (this.tokens.get() === used) {
        this.signingIn ??= this.signIn().finally(() => {
          this.signingIn = undefined;
        });
        await this.signingIn;
      }
      return request();
    }
  }

  private send(
    method: Method,
    template: string,
    url: string,
    body: unknown,
    extraHeader: Record<string, string>,
    responseType: 'text' | 'arraybuffer',
    authenticated = true,
  ): Promise<RawResponse> {
    const header: Record<string, string> = { ...extraHeader };
    const token = authenticated ? this.tokens.get() : undefined;
    if (token) header.Authorization = `Bearer ${token}`;
    if (body !== undefined) header['Content-Type'] = JSON_TYPE;
    const fullUrl = this.options.baseUrl + url;
    return new Promise<RawResponse>((resolve, reject) => {
      wx.request({
        url: fullUrl,
        method: method.toUpperCase() as 'GET',
        header,
        data: body === undefined ? undefined : JSON.stringify(body),
        dataType: '其他',
        responseType,
        timeout: this.timeout,
        success: (res) => {
          const h = lowerKeys(res.header as Record<string, unknown>);
          const isJson = (h['content-type'] ?? '').startsWith(JSON_TYPE);
          const data = responseType === 'text' && isJson ? parseMaybeJson(res.data) : res.data;
          this.options.onExchange?.({ method, path: template, url: fullUrl, status: res.statusCode, header: h, data });
          if (res.statusCode >= 200 && res.statusCode < 300) {
            resolve({ status: res.statusCode, header: h, data: res.statusCode === 204 ? undefined : data });
          } else {
            reject(toApiError(res.statusCode, data, h));
          }
        },
        fail: (err) => reject(new NetworkError(err.errMsg)),
      });
    });
  }

  private upload<T>(
    template: string,
    url: string,
    filePath: string,
    formData: Record<string, string | number> = {},
  ): Promise<T> {
    const token = this.tokens.get();
    const fullUrl = this.options.baseUrl + url;
    return new Promise<T>((resolve, reject) => {
      wx.uploadFile({
        url: fullUrl,
        filePath,
        name: 'file',
        formData,
        header: token ? { Authorization: `Bearer ${token}` } : {},
        timeout: this.timeout,
        success: (res) => {
          // wx.uploadFile gives neither headers nor a parsed body: the body is always text.
          const data = parseMaybeJson(res.data);
          const h = lowerKeys((res as { header?: Record<string, unknown> }).header);
          this.options.onExchange?.({ method: 'post', path: template, url: fullUrl, status: res.statusCode, header: h, data });
          if (res.statusCode >= 200 && res.statusCode < 300) resolve(data as T);
          else reject(toApiError(res.statusCode, data, h));
        },
        fail: (err) => reject(new NetworkError(err.errMsg)),
      });
    });
  }
}

function wxLogin(): Promise<string> {
  return new Promise((resolve, reject) => {
    wx.login({
      success: (res) => (res.code ? resolve(res.code) : reject(new NetworkError('login:fail no code'))),
      fail: (err) => reject(new NetworkError(err.errMsg)),
    });
  });
}

/** Creates the client. */
export function createClient(options: ClientOptions): HuzhuClient {
  return new HuzhuClient(options);
}
