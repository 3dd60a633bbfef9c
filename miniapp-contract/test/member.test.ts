// A member's journey on the phone, through the client exactly as the mini-program uses it:
// sign in with wx.login (binding WeChat by name and ID number the first time), bind the phone
// number, read the schemes, simulate, see the memberships, file a claim with photos, follow it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, type HuzhuClient, type Schemas } from '../dist/client.js';
import { photoFile } from './support/photos.mjs';
import { BANK_CARD, demoMember, useWorld } from './support/world.js';

const world = useWorld();
let phone: HuzhuClient;
let member: Schemas['MemberResponse'];
let membership: Schemas['MembershipResponse'];
let claimId: string;

const isApiError = (status: number, code?: string) => (e: unknown) =>
  e instanceof ApiError && e.status === status && (code === undefined || e.code === code);

test('a member signs in with wx.login, binding this WeChat by name and ID number the first time', async () => {
  ({ membership, member } = await demoMember(world));
  world.holdPhone('o-member-li-wenbo');
  phone = world.client('member');

  await assert.rejects(phone.signIn(), isApiError(401, 'account_not_bound'));
  await assert.rejects(phone.signIn({ name: member.name, id_number: '150102197001010000' }), (e) => e instanceof ApiError && e.status === 422);
  const signedIn = await phone.signIn({ name: member.name, id_number: member.id_number });
  assert.equal(signedIn.account.role, 'member');
  assert.equal(signedIn.account.id, member.id);
  assert.equal(signedIn.token_type, 'Bearer');

  // Next time the same WeChat signs straight in.
  phone.signOut();
  const again = await phone.signIn();
  assert.equal(again.account.id, member.id);
});

test('the member binds a phone number from the getPhoneNumber button', async () => {
  const bound = await phone.bindPhone(world.wechat.phoneCode('13800138000'));
  assert.equal(bound.phone, '138****8000');
  const me = await phone.get('/api/v1/me');
  assert.equal(me.role, 'member');
  assert.equal(me.member?.id, member.id);
  // A used code is refused by WeChat, and the client says so as a typed error.
  const code = world.wechat.phoneCode('13900139000');
  await phone.bindPhone(code);
  await assert.rejects(phone.bindPhone(code), isApiError(401, 'wechat_invalid_code'));
});

test('the member reads the schemes and simulates a hospital stay', async () => {
  const schemes = await phone.get('/api/v1/schemes');
  assert.ok(schemes.some((s) => s.code === 'nm-inpatient-2025'));
  const scheme = await phone.get('/api/v1/schemes/{code}', { path: { code: 'nm-inpatient-2025' } });
  assert.ok(scheme.version >= 1);
  assert.equal(scheme.complete, true);
  const text = await phone.get('/api/v1/authorisation-texts/{scheme_code}', { path: { scheme_code: 'wj-2022' } });
  assert.ok(text.body.length > 0);

  const simulation = await phone.post('/api/v1/simulations', {
    body: {
      scheme: 'nm-inpatient-2025',
      member: {
        coverage_start: membership.coverage_start,
        coverage_end: membership.coverage_end,
        consecutive_periods: membership.consecutive_periods,
        continuous_renewal: membership.continuous_renewal,
      },
      events: [
        { kind: 'inpatient', admitted_on: '2025-03-01', discharged_on: '2025-03-11', billed_days: 10, eligible_self_pay: '12000.00', deductible: '800.00' },
      ],
    },
  });
  assert.match(simulation.period_total, /^\d+\.\d\d$/);
  await assert.rejects(
    phone.post('/api/v1/simulations', { body: { scheme: 'no-such-scheme', member: simulationMember(), events: [] } }),
    (e) => e instanceof ApiError && e.status >= 400 && e.status < 500,
  );
});

function simulationMember() {
  return {
    coverage_start: membership.coverage_start,
    coverage_end: membership.coverage_end,
    consecutive_periods: membership.consecutive_periods,
    continuous_renewal: membership.continuous_renewal,
  };
}

test('the member sees their memberships', async () => {
  const mine = await phone.get('/api/v1/me/memberships');
  const period = mine.items.find((p) => p.id === membership.id);
  assert.ok(period, 'the membership the union sees');
  assert.equal(period.scheme_code, 'nm-inpatient-2025');
  assert.equal(period.open_offset, '0.00');
  const authorisations = await phone.get('/api/v1/me/authorisations');
  assert.ok(Array.isArray(authorisations));
  // The exact text signed with an authorisation: only the worker's own.
  for (const a of authorisations) {
    const signedText = await phone.get('/api/v1/me/authorisations/{id}/text', { path: { id: a.id } });
    assert.equal(signedText.sha256, a.text_sha256);
  }
  await assert.rejects(
    phone.get('/api/v1/me/authorisations/{id}/text', { path: { id: 'no-such-authorisation' } }),
    isApiError(404),
  );
  // The worker's money: deductions (month, amount, status, the bank's reason) and refunds.
  const money = await phone.get('/api/v1/me/deductions');
  assert.ok(Array.isArray(money.deductions));
  assert.ok(Array.isArray(money.refunds));
});

test('the member files a claim, photographs every required material and submits it', async () => {
  const event = { kind: 'inpatient', admitted_on: '2025-03-01', discharged_on: '2025-03-11', billed_days: 10, eligible_self_pay: '12000.00', deductible: '800.00' };
  const key = 'member-claim-1';
  const draft = await phone.createClaim({ membership_id: membership.id, event, bank_card: BANK_CARD }, key);
  assert.equal(draft.claim.status, 'draft');
  assert.ok(draft.required_materials.length > 0);
  // A retry of the same filing (a flaky network) yields the same claim.
  const retried = await phone.createClaim({ membership_id: membership.id, event, bank_card: BANK_CARD }, key);
  assert.equal(retried.claim.id, draft.claim.id);

  const id = draft.claim.id;
  await assert.rejects(phone.submitClaim(id, draft.claim.version), isApiError(422, 'materials_missing'));

  let seed = 100;
  for (const category of draft.required_materials) {
    const material = await phone.uploadMaterial(id, category, photoFile(seed++));
    assert.equal(material.category, category);
  }
  // An extra photo taken by mistake is removed again.
  const extra = await phone.uploadMaterial(id, draft.required_materials[0], photoFile(seed++));
  await phone.delete('/api/v1/claims/{id}/materials/{material_id}', { path: { id, material_id: extra.id } });
  await assert.rejects(phone.uploadMaterial(id, 'no_such_category', photoFile(seed++)), isApiError(422, 'unknown_category'));

  const before = await phone.get('/api/v1/claims/{id}', { path: { id } });
  assert.equal(before.materials.length, draft.required_materials.length);
  const submitted = await phone.submitClaim(id, before.claim.version, `submit-${id}`);
  assert.equal(submitted.claim.status, 'union_review');
  // Submitting again with the same key (the answer was lost) is harmless.
  const again = await phone.submitClaim(id, before.claim.version, `submit-${id}`);
  assert.equal(again.claim.status, 'union_review');
  claimId = id;
});

test('the member follows the claim: list, detail with timeline, counts and photo links', async () => {
  const page = await phone.get('/api/v1/claims');
  assert.ok(page.items.some((c) => c.id === claimId));
  const counts = await phone.get('/api/v1/claims/counts');
  assert.equal(counts.counts.union_review, 1);
  const detail = await phone.get('/api/v1/claims/{id}', { path: { id: claimId } });
  assert.equal(detail.claim.status, 'union_review');
  assert.equal(detail.claim.flagged, false);
  assert.ok(detail.timeline.some((s) => s.status === 'union_review'));
  // Not yet judged; the period's money is for reviewers only.
  assert.deepEqual(detail.judgements, []);
  assert.equal(detail.period, null);

  const material = detail.materials[0];
  const link = new URL(material.thumbnail_url, world.server.baseUrl);
  const bytes = await phone.download('/api/v1/claim-photos/{material_id}', {
    path: { material_id: material.id },
    query: {
      variant: link.searchParams.get('variant') ?? '',
      expires: Number(link.searchParams.get('expires')),
      signature: link.searchParams.get('signature') ?? '',
    },
  });
  assert.ok(bytes.byteLength > 0);
  // Someone else's claim does not exist for this member.
  await assert.rejects(
    phone.get('/api/v1/claims/{id}', { path: { id: '00000000-0000-0000-0000-000000000000' } }),
    isApiError(404, 'not_found'),
  );
});
