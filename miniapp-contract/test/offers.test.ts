// The member's offer journey (免申即享), through the client as the mini-program uses it: the
// association imports the medical-insurance bureau's settlement file, the member finds the
// benefit offered in their claims with its amount, breakdown and the day it lapses, confirms
// the card to pay to, and follows it into review.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, type HuzhuClient, type Schemas } from '../dist/client.js';
import { textFile } from './support/photos.mjs';
import { BANK_CARD, memberOnPhone, useWorld } from './support/world.js';

const world = useWorld();
let phone: HuzhuClient;
let membership: Schemas['MembershipResponse'];
let offerId: string;

const isApiError = (status: number, code?: string) => (e: unknown) =>
  e instanceof ApiError && e.status === status && (code === undefined || e.code === code);

test("the association imports the bureau's settlement file and the member's stay is offered", async () => {
  let member: Schemas['MemberResponse'];
  ({ phone, membership, member } = await memberOnPhone(world, 'o-offer-member'));
  const association = await world.staff('association');
  const csv =
    '证件号码,姓名,结算ID,入院日期,出院日期,住院天数,医疗费用总额,统筹基金支付,起付标准,政策范围内个人自付,医疗类别\n' +
    `${member.id_number},${member.name},JS-C-1,2025-04-01,2025-04-11,10,30000.00,15000.00,800.00,12000.00,住院\n`;
  const queued = await association.uploadFile('/api/v1/settlement-imports', {}, textFile('结算.csv', csv));
  let job = queued;
  for (let i = 0; i < 300 && job.status !== 'succeeded' && job.status !== 'failed'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    job = await association.get('/api/v1/settlement-imports/{id}', { path: { id: queued.id } });
  }
  assert.equal(job.status, 'succeeded', JSON.stringify(job));
  assert.equal(job.summary?.matched, 1);
  assert.equal(job.summary?.offered, 1);
});

test('the member lists their claims and sees the offer with its amount, breakdown and deadline', async () => {
  const page = await phone.get('/api/v1/claims');
  const offer = page.items.find((c) => c.status === 'offered');
  assert.ok(offer, 'an offer among the claims');
  offerId = offer.id;
  assert.equal(offer.filed_by, 'insurance_file');
  assert.equal(offer.membership_id, membership.id);

  const detail = await phone.get('/api/v1/claims/{id}', { path: { id: offerId } });
  assert.equal(detail.claim.status, 'offered');
  assert.match(detail.claim.payable ?? '', /^\d+\.\d\d$/);
  assert.ok(Number(detail.claim.payable) > 0);
  assert.ok((detail.claim.judgement?.items.length ?? 0) > 0, 'the breakdown');
  // nm-inpatient-2025: claims (and so confirmations) within 90 days after the period ends.
  assert.equal(membership.coverage_end, '2025-12-31');
  assert.equal(detail.claim.lapses_on, '2026-03-31');
  assert.equal(detail.timeline[0]?.action, 'offered');
  const counts = await phone.get('/api/v1/claims/counts');
  assert.equal(counts.counts.offered, 1);
});

test('the member confirms the card to pay to and sees the offer in review', async () => {
  const detail = await phone.get('/api/v1/claims/{id}', { path: { id: offerId } });
  await assert.rejects(
    phone.post('/api/v1/claims/{id}/confirm-offer', { path: { id: offerId }, body: { version: detail.claim.version + 5, bank_card: BANK_CARD } }),
    isApiError(409, 'version_conflict'),
  );
  const confirmed = await phone.post('/api/v1/claims/{id}/confirm-offer', {
    path: { id: offerId },
    body: { version: detail.claim.version, bank_card: BANK_CARD },
  });
  assert.equal(confirmed.claim.status, 'association_review');
  assert.deepEqual(
    confirmed.timeline.map((s) => s.action),
    ['offered', 'confirmed'],
  );
  // Confirmed once: a second confirmation is not possible.
  await assert.rejects(
    phone.post('/api/v1/claims/{id}/confirm-offer', { path: { id: offerId }, body: { version: confirmed.claim.version, bank_card: BANK_CARD } }),
    isApiError(409, 'invalid_transition'),
  );
  const page = await phone.get('/api/v1/claims');
  assert.equal(page.items.find((c) => c.id === offerId)?.status, 'association_review');
  const counts = await phone.get('/api/v1/claims/counts');
  assert.equal(counts.counts.association_review, 1);
});
