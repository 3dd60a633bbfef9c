// One running world per test file: a fake WeChat, the real server, the `wx` shim, and a
// contract checker that sees every answer any client gets.
import { createHmac } from 'node:crypto';
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '../../dist/client.js';
import { ContractChecker } from './contract.mjs';
import { FakeWeChat } from './fake-wechat.mjs';
import { JWT_SECRET, startServer } from './server.mjs';
import { installWx } from './wx-shim.mjs';

export const BANK_CARD = '6217000000000000004';

export function useWorld() {
  const world = {
    checker: new ContractChecker(),
    /** A client with its own token storage (one per person). */
    client(name) {
      return createClient({
        baseUrl: world.server.baseUrl,
        storageKey: `huzhu.token.${name}`,
        onExchange: (e) => world.checker.check(e),
      });
    },
    /** A staff member signed in through the demo sign-in. */
    async staff(login) {
      const c = world.client(login);
      await c.devLogin(login);
      return c;
    },
    /** The person whose phone is in use: `wx.login` codes are theirs. */
    holdPhone(openid) {
      world.wx.phone.openid = openid;
    },
  };
  before(async () => {
    world.wechat = await new FakeWeChat().start();
    world.server = await startServer({ wechat: world.wechat });
    world.wx = installWx({ wechat: world.wechat });
  });
  after(async () => {
    await world.server?.stop();
    await world.wechat?.stop();
    assert.deepEqual(world.checker.violations, [], 'answers that break openapi.json');
  });
  return world;
}

/** The same token with its expiry moved `secondsAgo` into the past, signed with the server's key. */
export function expired(token, secondsAgo = 120) {
  const [header, payload] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  claims.exp = Math.floor(Date.now() / 1000) - secondsAgo;
  claims.iat = claims.exp - 900;
  const body = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${body}.${createHmac('sha256', JWT_SECRET).update(body).digest('base64url')}`;
}

/**
 * A demo member of `scheme` as their union sees them, with the name and ID number the
 * association holds (a member binds WeChat with them on first sign-in).
 */
export async function demoMember(world, { union = 'union-power', scheme = 'nm-inpatient-2025', index = 0 } = {}) {
  const unionClient = await world.staff(union);
  const page = await unionClient.get('/api/v1/memberships', { query: { scheme, limit: 100 } });
  const membership = page.items[index];
  assert.ok(membership, `no membership ${index} of ${scheme}`);
  const association = await world.staff('association');
  const member = await association.get('/api/v1/members/{id}', { path: { id: membership.member.id } });
  return { membership, member };
}
