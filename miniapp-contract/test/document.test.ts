// The document itself: complete enough to build against. Every operation named once, every
// response described, every signed-in operation saying what an expired token looks like, every
// error answer shaped as ErrorBody with an example — and every example valid against its schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { document, pointer, validateAt } from './support/contract.mjs';

type Json = Record<string, any>;
const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;
const operations: Array<{ path: string; method: string; op: Json }> = [];
for (const [path, item] of Object.entries(document.paths as Json)) {
  for (const method of METHODS) if (item[method]) operations.push({ path, method, op: item[method] });
}

test('every operation has a unique operationId, a summary and a tag', () => {
  const ids = operations.map((o) => o.op.operationId);
  assert.equal(new Set(ids).size, ids.length, 'duplicate operationIds');
  for (const { path, method, op } of operations) {
    assert.ok(op.operationId, `${method} ${path}: operationId`);
    assert.ok(op.summary, `${method} ${path}: summary`);
    assert.ok(op.tags?.length, `${method} ${path}: tag`);
  }
  const declared = new Set((document.tags as Json[]).map((t) => t.name));
  for (const { op } of operations) for (const tag of op.tags) assert.ok(declared.has(tag), `tag ${tag} is not declared`);
});

test('every response is described; errors are ErrorBody with a code and an example', () => {
  for (const { path, method, op } of operations) {
    for (const [status, response] of Object.entries(op.responses as Json)) {
      assert.ok(response.description, `${method} ${path} ${status}: description`);
      if (Number(status) >= 400) {
        const content = response.content?.['application/json'];
        assert.match(content?.schema?.$ref ?? '', /^#\/components\/schemas\/(Simulation)?ErrorBody$/, `${method} ${path} ${status}: ErrorBody`);
        assert.ok(content.example?.error?.code, `${method} ${path} ${status}: example`);
      }
    }
    assert.ok(op.responses['500'], `${method} ${path}: 500`);
  }
});

test('signed-in operations use the bearer scheme and document 401 token_expired', () => {
  assert.equal(document.components.securitySchemes.bearer.scheme, 'bearer');
  let secured = 0;
  for (const { path, method, op } of operations) {
    if (!op.security?.length) continue;
    secured++;
    assert.deepEqual(Object.keys(op.security[0]), ['bearer'], `${method} ${path}`);
    assert.match(op.responses['401']?.description ?? '', /token_expired/, `${method} ${path}: 401`);
  }
  assert.ok(secured > 50);
});

test('operations with a body document 400, 413 and 422; the mini-program bodies have examples', () => {
  for (const { path, method, op } of operations) {
    if (!op.requestBody) continue;
    for (const status of ['400', '413', '422']) assert.ok(op.responses[status], `${method} ${path}: ${status}`);
  }
  for (const schema of ['WeChatSignIn', 'BindPhone', 'NewClaimRequest', 'VersionRequest', 'ApproveRequest', 'ReturnRequestBody', 'RejectRequest', 'SimulationRequest']) {
    assert.ok(document.components.schemas[schema].example, `${schema}: example`);
  }
});

test('every example in the document is valid against its schema', () => {
  let checked = 0;
  const problems: string[] = [];
  for (const [name, schema] of Object.entries(document.components.schemas as Json)) {
    if (schema.example === undefined) continue;
    checked++;
    for (const p of validateAt(pointer('components', 'schemas', name), schema.example)) problems.push(`schema ${name}: ${p}`);
  }
  for (const { path, method, op } of operations) {
    const contents: Array<[string[], Json]> = [];
    for (const [type, c] of Object.entries((op.requestBody?.content ?? {}) as Json)) contents.push([['paths', path, method, 'requestBody', 'content', type], c]);
    for (const [status, r] of Object.entries(op.responses as Json)) {
      for (const [type, c] of Object.entries((r.content ?? {}) as Json)) contents.push([['paths', path, method, 'responses', status, 'content', type], c]);
    }
    for (const [at, content] of contents) {
      if (content.example === undefined || !content.schema) continue;
      checked++;
      for (const p of validateAt(pointer(...at, 'schema'), content.example)) problems.push(`${method} ${path} ${at.slice(3).join(' ')}: ${p}`);
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(checked > 100, `only ${checked} examples`);
});

test('a roster import reports warnings, and a refused one downloads as the clerk\'s workbook', () => {
  const job = document.components.schemas.ImportJobResponse as Json;
  assert.ok(job.required.includes('warnings'), 'warnings is always there');
  assert.equal(job.properties.warnings.type, 'array');
  assert.match(job.properties.report.description, /batch_problems/);
  assert.match(job.properties.report.description, /rows_with_problems/);
  const workbook = (document.paths as Json)['/api/v1/import-jobs/{id}/problems.xlsx']?.get;
  assert.equal(workbook?.operationId, 'getImportProblemWorkbook');
  assert.ok(workbook.responses['200'].content['application/vnd.openxmlformats-officedocument.spreadsheetml.sheet']);
  assert.ok(workbook.responses['409'], '409 no_problems');
  // The schema of a scheme says which roster columns it requires.
  const roster = document.components.schemas.RosterRequirements as Json;
  assert.deepEqual(document.components.schemas.RosterColumn.enum.sort(), ['employer', 'insured', 'phone', 'status']);
  assert.ok(roster.properties.required);
  // Progress shows rosters awaiting transfer or confirmation apart from the confirmed.
  const line = document.components.schemas.ProgressLine as Json;
  assert.ok(line.required.includes('awaiting') && line.required.includes('enrolled'));
});

test('next year\'s roster downloads in one click, for staff, as a workbook', () => {
  const renewal = (document.paths as Json)['/api/v1/organisations/{id}/renewal-roster.xlsx']?.get;
  assert.equal(renewal?.operationId, 'exportRenewalRoster');
  assert.ok(renewal.responses['200'].content['application/vnd.openxmlformats-officedocument.spreadsheetml.sheet']);
  assert.ok(renewal.responses['404'], '404 outside the caller\'s scope');
  assert.deepEqual(renewal.security, [{ bearer: [] }]);
  assert.ok(renewal.parameters.some((p: Json) => p.name === 'scheme' && p.in === 'query'));
});
