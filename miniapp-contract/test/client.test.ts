// The client's own promises, against the real server: a token that expired is renewed
// silently with wx.login (once, however many requests were waiting), refusals arrive as typed
// errors with the server's code and details, no answer at all as a NetworkError, and a retried
// submission with its Idempotency-Key files one claim.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, NetworkError, createClient, isApiError, newIdempotencyKey, type HuzhuClient, type Schemas } from '../dist/client.js';
import { BANK_CARD, expired, memberOnPhone, useWorld } from './support/world.js';

const world = useWorld();
let phone: HuzhuClient;
let membership: Schemas['MembershipResponse'];

test('an expired token is renewed with wx.login and the request repeated, once for many requests', async () => {
  ({ phone, membership } = await memberOnPhone(world, 'o-member-client', 3));
  const before = phone.token;
  assert.ok(before);
  const logins = world.wechat.calls.jscode2session;
  world.wx.storage.set('huzhu.token.o-member-client', expired(before));

  const [me, memberships, claims] = await Promise.all([
    phone.get('/api/v1/me'),
    phone.get('/api/v1/me/memberships'),
    phone.get('/api/v1/claims'),
  ]);
  assert.equal(me.role, 'member');
  assert.ok(memberships.items.length > 0);
  assert.ok(Array.isArray(claims.items));
  assert.equal(world.wechat.calls.jscode2session, logins + 1, 'one wx.login for the three requests');
  assert.notEqual(phone.token, expired(before));
  // The server said token_expired before the client recovered.
  assert.ok(world.checker.seen.get('GET /api/v1/me')?.has(401));
});

test('after signing out everywhere the phone signs in again silently; the old token stays dead', async () => {
  const old = phone.token;
  assert.ok(old);
  const logins = world.wechat.calls.jscode2session;
  await phone.post('/api/v1/me/sessions/revoke', {});
  const me = await phone.get('/api/v1/me');
  assert.equal(me.role, 'member');
  assert.equal(world.wechat.calls.jscode2session, logins + 1, 'one wx.login');
  assert.notEqual(phone.token, old);
  assert.ok(world.checker.seen.get('GET /api/v1/me')?.has(401));
});

test('without a WeChat user to sign in again, the expiry reaches the caller as a typed error', async () => {
  const token = phone.token;
  assert.ok(token);
  world.wx.storage.set('huzhu.token.o-member-client', expired(token));
  world.holdPhone('o-nobody-bound');
  await assert.rejects(phone.get('/api/v1/me'), (e) => isApiError(e, 'account_not_bound') && e.status === 401);
  world.holdPhone('o-member-client');
  assert.equal((await phone.signIn()).account.role, 'member');
});

test('refusals are typed errors carrying the code, message, details and request id', async () => {
  const draft = await phone.createClaim({
    membership_id: membership.id,
    event: { kind: 'inpatient', admitted_on: '2025-06-01', discharged_on: '2025-06-03', eligible_self_pay: '900.00' },
    bank_card: BANK_CARD,
  });
  const stale = draft.claim.version - 1;
  const error = await phone.submitClaim(draft.claim.id, stale).then(
    () => assert.fail('a stale version must be refused'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof ApiError);
  assert.equal(error.status, 409);
  assert.equal(error.code, 'version_conflict');
  assert.equal(error.details.current_version, draft.claim.version);
  assert.ok(error.message.length > 0);
  assert.ok(error.requestId);

  // The member corrects the draft, then withdraws it after all.
  const edited = await phone.patch('/api/v1/claims/{id}', {
    path: { id: draft.claim.id },
    body: { version: draft.claim.version, event: { kind: 'inpatient', admitted_on: '2025-06-01', discharged_on: '2025-06-04', eligible_self_pay: '950.00' } },
  });
  assert.equal(edited.claim.event.discharged_on, '2025-06-04');
  const withdrawn = await phone.post('/api/v1/claims/{id}/withdraw', {
    path: { id: draft.claim.id },
    body: { version: edited.claim.version, note: '已在其他渠道报销' },
  });
  assert.equal(withdrawn.claim.status, 'withdrawn');
  await assert.rejects(
    phone.post('/api/v1/claims/{id}/withdraw', { path: { id: draft.claim.id }, body: { version: withdrawn.claim.version } }),
    (e) => isApiError(e, 'invalid_transition') && (e as ApiError).status === 409,
  );

  await assert.rejects(
    phone.createClaim({ membership_id: membership.id, event: { kind: 'inpatient' }, bank_card: '1234' }),
    (e) => isApiError(e) && e.status === 422 && typeof e.details === 'object',
  );
  await assert.rejects(phone.get('/api/v1/staff'), (e) => isApiError(e, 'forbidden') && (e as ApiError).status === 403);
  const anonymous = world.client('anonymous');
  await assert.rejects(anonymous.get('/api/v1/me'), (e) => isApiError(e, 'unauthenticated'));
});

test("WeChat's refusals of a sign-in arrive as the documented typed errors", async () => {
  world.holdPhone('o-member-client');
  const other = world.client('wechat-failures');
  for (const [errcode, status, code] of [
    [40029, 401, 'wechat_invalid_code'],
    [45011, 429, 'wechat_rate_limited'],
    [40226, 403, 'forbidden'],
    [-1, 503, 'wechat_busy'],
    [40013, 502, 'wechat_error'],
  ] as const) {
    world.wechat.failNextLogin(errcode);
    await assert.rejects(other.signIn(), (e) => isApiError(e, code) && (e as ApiError).status === status, `WeChat ${errcode}`);
  }
  assert.equal((await other.signIn()).account.role, 'member');
});

test('no answer at all is a NetworkError', async () => {
  const offline = createClient({ baseUrl: 'http://127.0.0.1:9', storageKey: 'offline', timeout: 2000 });
  await assert.rejects(offline.get('/api/v1/schemes'), (e) => e instanceof NetworkError && e.errMsg.startsWith('request:fail'));
  await assert.rejects(offline.uploadMaterial('x', 'invoice', '/no/such/file.jpg'), NetworkError);
});

test('a filing retried with its Idempotency-Key makes one claim, even when the first answer was lost', async () => {
  const key = newIdempotencyKey();
  assert.match(key, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const body = {
    membership_id: membership.id,
    event: { kind: 'inpatient', admitted_on: '2025-07-01', discharged_on: '2025-07-02', eligible_self_pay: '500.00' },
    bank_card: BANK_CARD,
  };
  const [a, b] = await Promise.all([phone.createClaim(body, key), phone.createClaim(body, key)]);
  assert.equal(a.claim.id, b.claim.id);
  const page = await phone.get('/api/v1/claims', { query: { limit: 100 } });
  assert.equal(page.items.filter((c) => c.id === a.claim.id).length, 1);
});
