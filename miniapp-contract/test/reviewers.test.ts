// Each reviewer's journey on their phone: the union's clerk (signed in through wx.login with
// the invitation code an administrator gave), the service point and the association work their
// queues — return a claim for a new photo, approve it stage by stage, reject another — and the
// association pays: a payout batch, the bank's files, the bank's result, the member paid.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, type HuzhuClient, type Schemas } from '../dist/client.js';
import { photoFile, textFile } from './support/photos.mjs';
import { BANK_CARD, memberOnPhone, useWorld } from './support/world.js';

const world = useWorld();
let member: HuzhuClient;
let union: HuzhuClient;
let servicePoint: HuzhuClient;
let association: HuzhuClient;
let claimId: string;
let seed = 500;

const isApiError = (status: number, code?: string) => (e: unknown) =>
  e instanceof ApiError && e.status === status && (code === undefined || e.code === code);

/** The member files and submits a claim with a photo of every required material. */
async function fileAndSubmit(
  phone: HuzhuClient,
  membership: Schemas['MembershipResponse'],
  event: Record<string, unknown>,
): Promise<Schemas['ClaimDetail']> {
  const draft = await phone.createClaim({ membership_id: membership.id, event, bank_card: BANK_CARD });
  for (const category of draft.required_materials) await phone.uploadMaterial(draft.claim.id, category, photoFile(seed++));
  return phone.submitClaim(draft.claim.id, draft.claim.version);
}

async function queue(reviewer: HuzhuClient, status: Schemas['ClaimStatus']) {
  const page = await reviewer.get('/api/v1/claims', { query: { status } });
  return page.items.map((c) => c.id);
}

test('the union clerk signs in on the phone with an invitation code, then straight away', async () => {
  const admin = await world.staff('admin');
  const staff = await admin.get('/api/v1/staff', { query: { limit: 100 } });
  const clerk = staff.items.find((s) => s.login === 'union-power');
  assert.ok(clerk);
  const invitation = await admin.post('/api/v1/staff/{id}/invitations', { path: { id: clerk.id } });

  world.holdPhone('o-union-power-clerk');
  union = world.client('union-power');
  await assert.rejects(union.signIn(), isApiError(401, 'account_not_bound'));
  await assert.rejects(union.signIn({ invitation_code: 'WRONG-CODE' }), isApiError(422, 'invitation_invalid'));
  const signedIn = await union.signIn({ invitation_code: invitation.code });
  assert.equal(signedIn.account.role, 'union_reviewer');
  union.signOut();
  assert.equal((await union.signIn()).account.id, clerk.id);
  // The code was single-use.
  world.holdPhone('o-someone-else');
  await assert.rejects(world.client('other').signIn({ invitation_code: invitation.code }), isApiError(422, 'invitation_invalid'));

  servicePoint = await world.staff('sp-xincheng');
  association = await world.staff('association');
});

test('the union approves a claim from its queue; the service point returns it for a sharper invoice', async () => {
  const m = await memberOnPhone(world, 'o-member-reviewed', 1);
  member = m.phone;
  const submitted = await fileAndSubmit(member, m.membership, {
    kind: 'inpatient', admitted_on: '2025-04-01', discharged_on: '2025-04-05', eligible_self_pay: '3000.00',
  });
  claimId = submitted.claim.id;
  assert.ok((await queue(union, 'union_review')).includes(claimId));
  const badges = await union.get('/api/v1/claims/counts');
  assert.ok(Number(badges.counts.union_review) >= 1);
  // Not the service point's turn yet.
  await assert.rejects(
    servicePoint.post('/api/v1/claims/{id}/approve', { path: { id: claimId }, body: { version: submitted.claim.version } }),
    (e) => e instanceof ApiError && (e.status === 404 || e.status === 403 || e.status === 409),
  );

  const approved = await union.post('/api/v1/claims/{id}/approve', { path: { id: claimId }, body: { version: submitted.claim.version } });
  assert.equal(approved.claim.status, 'service_point_review');
  // A stale version is refused with the current one in the details.
  await assert.rejects(
    union.post('/api/v1/claims/{id}/approve', { path: { id: claimId }, body: { version: submitted.claim.version } }),
    (e) => e instanceof ApiError && e.status === 409,
  );

  assert.ok((await queue(servicePoint, 'service_point_review')).includes(claimId));
  const detail = await servicePoint.get('/api/v1/claims/{id}', { path: { id: claimId } });
  const returned = await servicePoint.post('/api/v1/claims/{id}/return', {
    path: { id: claimId },
    body: { version: detail.claim.version, message: '发票不清晰', materials: [{ category: 'invoice', note: '请重拍发票' }] },
  });
  assert.equal(returned.claim.status, 'returned');
  assert.equal(returned.claim.returned?.materials[0]?.category, 'invoice');
});

test('the member sees the return, sends a new photo and resubmits into the same stage', async () => {
  const detail = await member.get('/api/v1/claims/{id}', { path: { id: claimId } });
  assert.equal(detail.claim.status, 'returned');
  assert.equal(detail.claim.returned?.message, '发票不清晰');
  const old = detail.materials.find((m) => m.category === 'invoice');
  assert.ok(old);
  await member.delete('/api/v1/claims/{id}/materials/{material_id}', { path: { id: claimId, material_id: old.id } });
  await member.uploadMaterial(claimId, 'invoice', photoFile(seed++));
  const current = await member.get('/api/v1/claims/{id}', { path: { id: claimId } });
  const resubmitted = await member.submitClaim(claimId, current.claim.version);
  assert.equal(resubmitted.claim.status, 'service_point_review');
});

test('the service point and the association approve; the association pays through a batch', async () => {
  let detail = await servicePoint.get('/api/v1/claims/{id}', { path: { id: claimId } });
  detail = await servicePoint.post('/api/v1/claims/{id}/approve', { path: { id: claimId }, body: { version: detail.claim.version } });
  assert.equal(detail.claim.status, 'association_review');

  assert.ok((await queue(association, 'association_review')).includes(claimId));
  detail = await association.post('/api/v1/claims/{id}/approve', { path: { id: claimId }, body: { version: detail.claim.version } });
  assert.equal(detail.claim.status, 'approved');
  assert.match(detail.claim.approved ?? '', /^\d+\.\d\d$/);
  assert.ok(detail.claim.pay_due_on);
  // The judgement it was approved on, and its period's money (filing order, no offset).
  assert.equal(detail.judgements.length, 1);
  assert.equal(detail.judgements[0].cause, 'approved');
  assert.equal(detail.judgements[0].caused_by, null);
  assert.equal(detail.judgements[0].payable, detail.claim.payable);
  assert.equal(detail.judgements[0].scheme_version, detail.claim.scheme_version);
  assert.ok(detail.period);
  assert.equal(detail.period.open_offset, '0.00');
  assert.match(detail.period.granted, /^\d+\.\d\d$/);

  const batch = await association.post('/api/v1/payout-batches', { body: {} });
  assert.ok(batch.item_count >= 1);
  const batches = await association.get('/api/v1/payout-batches');
  assert.ok(batches.items.some((b) => b.id === batch.id));
  const full = await association.get('/api/v1/payout-batches/{id}', { path: { id: batch.id } });
  const item = full.items.find((i) => i.claim_id === claimId);
  assert.ok(item);
  assert.equal(item.amount, detail.claim.approved);

  const xlsx = await association.download('/api/v1/payout-batches/{id}/file.xlsx', { path: { id: batch.id } });
  assert.ok(xlsx.byteLength > 0);
  const csv = new TextDecoder().decode(await association.download('/api/v1/payout-batches/{id}/file.csv', { path: { id: batch.id } }));
  assert.ok(csv.includes(item.serial));

  const lines = full.items.map((i) => `${i.serial},${i.payee_name},${i.amount},成功,`);
  const result = textFile('result.csv', `流水号,户名,金额,结果,失败原因\n${lines.join('\n')}\n合计,${lines.length}\n`);
  const imported = await association.uploadFile('/api/v1/payout-batches/{id}/result', { path: { id: batch.id } }, result);
  assert.ok(imported);
  // A file that names nothing of the batch is refused whole, with every problem listed.
  const wrong = textFile('wrong.csv', '流水号,户名,金额,结果,失败原因\nNO-SUCH,某某,1.00,成功,\n合计,1\n');
  await assert.rejects(
    association.uploadFile('/api/v1/payout-batches/{id}/result', { path: { id: batch.id } }, wrong),
    (e) => e instanceof ApiError && e.status === 422,
  );

  const paid = await member.get('/api/v1/claims/{id}', { path: { id: claimId } });
  assert.equal(paid.claim.status, 'paid');
  assert.ok(paid.timeline.some((s) => s.level === 'bank'));
  // Nothing left to pay.
  await assert.rejects(association.post('/api/v1/payout-batches', { body: {} }), isApiError(422, 'nothing_to_pay'));
});

test('the union rejects a claim with a reason code; the member sees why', async () => {
  const m = await memberOnPhone(world, 'o-member-rejected', 2);
  const submitted = await fileAndSubmit(m.phone, m.membership, {
    kind: 'inpatient', admitted_on: '2025-05-01', discharged_on: '2025-05-04', eligible_self_pay: '2000.00',
  });
  const id = submitted.claim.id;
  await assert.rejects(
    union.post('/api/v1/claims/{id}/reject', { path: { id }, body: { version: submitted.claim.version, reason: 'other' } }),
    isApiError(422),
  );
  const rejected = await union.post('/api/v1/claims/{id}/reject', {
    path: { id },
    body: { version: submitted.claim.version, reason: 'excluded_traffic_accident' },
  });
  assert.equal(rejected.claim.status, 'rejected');
  const seen = await m.phone.get('/api/v1/claims/{id}', { path: { id } });
  assert.equal(seen.claim.reject_reason, 'excluded_traffic_accident');
  const figures = await association.get('/api/v1/claim-figures');
  assert.ok(figures.totals.length > 0);
  for (const total of figures.totals) assert.match(total.open_offset, /^\d+\.\d\d$/);
});

test('staff look members up by personal numbers in a POST body, never in the URL', async () => {
  const admin = await world.staff('admin');
  const page = await admin.get('/api/v1/members', { query: { limit: 1 } });
  const someone = page.items[0];
  assert.ok(someone && !someone.id_number.includes('*'), 'the administrator sees full numbers');
  const found = await admin.post('/api/v1/members/search', { body: { id_number: someone.id_number } });
  assert.deepEqual(found.items.map((m) => m.id), [someone.id]);
  await assert.rejects(admin.post('/api/v1/members/search', { body: {} }), isApiError(422));
});

test('the association reads the send log: a pending message says when it will actually go', async () => {
  const page = await association.get('/api/v1/messages', { query: { limit: 100 } });
  assert.ok(page.items.length > 0);
  for (const m of page.items) {
    if (m.status === 'pending') {
      assert.ok(m.sends_at, `${m.id} has sends_at`);
      assert.ok(Date.parse(m.sends_at) >= Date.parse(m.due_at) - 1000);
    } else {
      assert.equal(m.sends_at ?? null, null);
    }
  }
});

test("the association's deduction desk: batches with totals, failures per union, refunds; no batch outside the enrolment window", async () => {
  const list = await association.get('/api/v1/deductions', { query: { scheme_code: 'wj-2022', limit: 20 } });
  assert.ok(Array.isArray(list.items));
  assert.ok(list.totals.batches >= list.items.length);
  assert.match(list.totals.amount, /^\d+\.\d\d$/);
  assert.ok(list.next_cursor === null || typeof list.next_cursor === 'string');
  for (const b of list.items) {
    const lines = await association.get('/api/v1/deductions/{id}/lines', { path: { id: b.id }, query: { limit: 5 } });
    assert.ok(lines.items.length <= 5);
  }
  await assert.rejects(
    association.get('/api/v1/deductions/{id}/lines', { path: { id: 'no-such-batch' } }),
    isApiError(404),
  );
  const failed = await association.get('/api/v1/deductions/failed', { query: { scheme_code: 'wj-2022' } });
  assert.ok(Array.isArray(failed.unions));
  assert.ok(Array.isArray(failed.items));
  for (const u of failed.unions) assert.match(u.amount, /^\d+\.\d\d$/);
  const refunds = await association.get('/api/v1/deduction-refunds', { query: { status: 'due' } });
  assert.ok(Array.isArray(refunds.items));
  await assert.rejects(association.get('/api/v1/deduction-refunds', { query: { limit: 0 } }), isApiError(422));
  // The server's calendar is today: wj-2022's window closed on 2021-12-25, so no batch (and no bank file).
  await assert.rejects(
    association.post('/api/v1/deductions', { body: { scheme_code: 'wj-2022', month: '2021-11' } }),
    isApiError(422, 'enrolment_closed'),
  );
  await assert.rejects(association.get('/api/v1/deductions', { query: { status: 'lost' } }), isApiError(422));
  // Signed authorisations with their evidence, for disputes and audits (the association only).
  const signed = await association.get('/api/v1/authorisations', { query: { scheme_code: 'wj-2022' } });
  assert.ok(Array.isArray(signed.items));
  for (const a of signed.items) assert.equal(a.evidence.length, 3);
  await assert.rejects(union.get('/api/v1/authorisations'), isApiError(403));
  await assert.rejects(
    association.post('/api/v1/authorisations/{id}/revoke', { path: { id: 'no-such-authorisation' }, body: { reason: '职工来电' } }),
    isApiError(404),
  );
});
