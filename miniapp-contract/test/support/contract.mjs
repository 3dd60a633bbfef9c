// Checks answers against openapi.json: the status must be documented for the operation, the
// content type must be one it documents, and a JSON body must match its schema (Ajv, JSON
// Schema 2020-12 as OpenAPI 3.1 uses). Collects every violation and every operation seen.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const document = JSON.parse(readFileSync(join(root, 'openapi.json'), 'utf8'));
const DOC_ID = 'https://huzhu.invalid/openapi.json';

const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
addFormats(ajv);
ajv.addFormat('int32', { type: 'number', validate: (n) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
ajv.addFormat('int64', { type: 'number', validate: (n) => Number.isInteger(n) });
ajv.addFormat('uint64', { type: 'number', validate: (n) => Number.isInteger(n) && n >= 0 });
ajv.addFormat('uint32', { type: 'number', validate: (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32 });
ajv.addFormat('double', { type: 'number', validate: () => true });
ajv.addFormat('float', { type: 'number', validate: () => true });
ajv.addFormat('binary', () => true);
ajv.addSchema({ ...document, $id: DOC_ID });

const validators = new Map();

/** Validates `value` against the schema at a JSON pointer of the document; returns the errors. */
export function validateAt(pointerPath, value) {
  const key = `at ${pointerPath}`;
  if (!validators.has(key)) validators.set(key, ajv.compile({ $ref: DOC_ID + pointerPath }));
  const validate = validators.get(key);
  return validate(value) ? [] : validate.errors.map((e) => `${e.instancePath} ${e.message}`);
}

export function pointer(...parts) {
  return '#/' + parts.map((p) => String(p).replaceAll('~', '~0').replaceAll('/', '~1')).join('/');
}
function validatorFor(path, method, status, type) {
  const key = `${method} ${path} ${status} ${type}`;
  if (!validators.has(key)) {
    validators.set(key, ajv.compile({ $ref: DOC_ID + pointer('paths', path, method, 'responses', status, 'content', type, 'schema') }));
  }
  return validators.get(key);
}

/** Every operation of the document, as `METHOD path`. */
export function operations() {
  const out = [];
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of ['get', 'put', 'post', 'delete', 'patch']) if (item[method]) out.push(`${method.toUpperCase()} ${path}`);
  }
  return out;
}

export class ContractChecker {
  constructor() {
    this.violations = [];
    this.seen = new Map();
  }

  /** Checks one exchange (the client's `onExchange`). */
  check({ method, path, status, header, data }) {
    const name = `${method.toUpperCase()} ${path} → ${status}`;
    this.seen.set(`${method.toUpperCase()} ${path}`, (this.seen.get(`${method.toUpperCase()} ${path}`) ?? new Set()).add(status));
    const operation = document.paths[path]?.[method];
    if (!operation) return this.violations.push(`${name}: no such operation in the document`);
    const response = operation.responses[String(status)];
    if (!response) {
      return this.violations.push(
        `${name}: status not documented (documented: ${Object.keys(operation.responses).join(', ')}); body ${JSON.stringify(data)?.slice(0, 300)}`,
      );
    }
    const content = response.content ?? {};
    const types = Object.keys(content);
    if (types.length === 0) {
      if (data !== undefined && data !== '' && !(data instanceof ArrayBuffer && data.byteLength === 0)) {
        this.violations.push(`${name}: a body where the document says none`);
      }
      return;
    }
    const contentType = (header['content-type'] ?? '').split(';')[0].trim();
    // uploadFile answers carry no headers: the body must then be JSON if JSON is documented.
    const type = contentType || (types.includes('application/json') ? 'application/json' : '');
    if (!types.includes(type)) return this.violations.push(`${name}: content type '${contentType}' not documented (${types.join(', ')})`);
    if (type !== 'application/json') return;
    const validate = validatorFor(path, method, String(status), type);
    if (!validate(data)) {
      this.violations.push(`${name}: body does not match the schema: ${ajv.errorsText(validate.errors)}; body ${JSON.stringify(data).slice(0, 500)}`);
    }
  }
}
