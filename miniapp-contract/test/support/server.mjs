// Starts the real `huzhu` binary on the embedded default (a fresh SQLite file and local-disk
// photos in a temporary directory, the demo seeded), on a free port of 127.0.0.1, with its
// WeChat client pointed at a fake and the service's date pinned to 2025-09-15 (the demo's 2025
// claim windows are open then).
//
// The binary: $HUZHU_BIN when set; otherwise `cargo build -p huzhu-api --bin huzhu` (a no-op
// when it is fresh) and the debug binary in cargo's target directory (CARGO_TARGET_DIR honoured).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const workspace = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The JWT key the server signs with (tests forge an expired token with it). */
export const JWT_SECRET = randomBytes(36).toString('base64');
export const TODAY = '2025-09-15';

export function huzhuBinary() {
  if (process.env.HUZHU_BIN) return process.env.HUZHU_BIN;
  execFileSync('cargo', ['build', '--quiet', '-p', 'huzhu-api', '--bin', 'huzhu'], { cwd: workspace, stdio: 'inherit' });
  const meta = JSON.parse(
    execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], { cwd: workspace, maxBuffer: 64 << 20 }).toString(),
  );
  return join(meta.target_directory, 'debug', 'huzhu');
}

/**
 * Starts the server; resolves to `{ baseUrl, stop(), output() }`.
 * @param {{ wechat?: { baseUrl: string, appid: string, secret: string }, binary?: string, env?: Record<string, string> }} options
 */
export async function startServer({ wechat, binary = huzhuBinary(), env = {} } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'huzhu-contract-'));
  const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HUZHU_')));
  Object.assign(childEnv, {
    HUZHU_DATA_DIR: dataDir,
    HUZHU_LISTEN: '127.0.0.1:0',
    HUZHU_CLOCK__TODAY: TODAY,
    HUZHU_AUTH__JWT_SECRET: JWT_SECRET,
    HUZHU_LOG__FORMAT: 'json',
    HUZHU_LOG__FILTER: 'warn',
    RUST_LOG: 'warn',
    ...(wechat
      ? { HUZHU_WECHAT__BASE_URL: wechat.baseUrl, HUZHU_WECHAT__APPID: wechat.appid, HUZHU_WECHAT__SECRET: wechat.secret }
      : {}),
    ...env,
  });
  const child = spawn(binary, ['serve'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const baseUrl = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`huzhu did not start within 60 s:\n${out}`)), 60_000);
    const look = () => {
      const m = out.match(/huzhu listening on (http:\/\/[\d.:]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', look);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`huzhu exited with ${code}:\n${out}`));
    });
  });
  child.removeAllListeners('exit');
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return {
    baseUrl,
    dataDir,
    output: () => out,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
