// One running world per test file: a fake WeChat, the real server, the `wx` shim, and a
// contract checker that sees every answer any client gets.
import { createHmac } from 'node:crypto';
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, type HuzhuClient, type Schemas } from '../../dist/client.js';
import { ContractChecker } from './contract.mjs';
import { FakeWeChat } from './fake-wechat.mjs';
import { JWT_SECRET, startServer } from './server.mjs';
import { installWx } from './wx-shim.mjs';

/** A bank card number that passes the Luhn check. */
export const BANK_CARD = '6217000000000000004';

export interface World {
  checker: ContractChecker;
  wechat: FakeWeChat;
  server: Awaited<ReturnType<typeof startServer>>;
  wx: ReturnType<typeof installWx>;
  /** A client with its own token storage (one per person). */
  client(name: string): HuzhuClient;
  /** A staff member signed in through the demo sign-in. */
  staff(login: string): Promise<HuzhuClient>;
  /** The person whose phone is in use: `wx.login` codes are theirs. */
  holdPhone(openid: string): void;
}

export function useWorld(): World {
  const world = {
    checker: new ContractChecker(),
    client(name: string) {
      return createClient({
        baseUrl: world.server.baseUrl,
        storageKey: `huzhu.token.${name}`,
        onExchange: (e) => world.checker.check(e),
      });
    },
    async staff(login: string) {
      const c = world.client(login);
      await c.devLogin(login);
      return c;
    },
    holdPhone(openid: string) {
      world.wx.phone.openid = openid;
    },
  } as World;
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
export function expired(token: string, secondsAgo = 120): string {
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
export async function demoMember(
  world: World,
  { union = 'union-power', scheme = 'nm-inpatient-2025', index = 0 } = {},
): Promise<{ membership: Schemas['MembershipResponse']; member: Schemas['MemberResponse'] }> {
  const unionClient = await world.staff(union);
  const page = await unionClient.get('/api/v1/memberships', { query: { scheme, limit: 100 } });
  const membership = page.items[index];
  assert.ok(membership, `no membership ${index} of ${scheme}`);
  const association = await world.staff('association');
  const member = await association.get('/api/v1/members/{id}', { path: { id: membership.member.id } });
  return { membership, member };
}

/** Signs a demo member in on their phone through wx.login, binding WeChat on first use. */
export async function memberOnPhone(world: World, openid: string, index = 0) {
  const { membership, member } = await demoMember(world, { index });
  world.holdPhone(openid);
  const phone = world.client(openid);
  await phone.signIn({ name: member.name, id_number: member.id_number });
  return { phone, membership, member };
}
