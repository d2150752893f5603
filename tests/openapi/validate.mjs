// tally - checks the answers the integration suite got against
// docs/openapi.yaml. tests/lib/helpers.bash's http() keeps each answer
// in a directory of its own under ANSWERS: "request" (listener,
// method, path, one a line), "status", "headers" (as curl -D wrote
// them) and "body". For each answer:
//   - its path and listener name a path of the description, or match a
//     templated one ("/read/{name}", the name '/' included) (its own
//     servers, or the document's, by x-listener): the method's operation
//     must list the status (or its range, 5XX), or, for a method the
//     path does not list, components/responses/MethodNotAllowed (405)
//     or Refused (lighttpd's refusals); the response's required headers
//     must be there and every header it describes match its schema; the
//     Content-Type must be one the response describes, and a JSON body
//     (not HEAD's) must match its schema;
//   - OPTIONS answered 204 or 403 on a public path: a CORS preflight
//     (components/responses/Preflight, CrossOriginRefused);
//   - any other path: a JSON answer must be an Error (the 404 listing
//     the API, lighttpd's refusals); others (the page, its HTML errors)
//     are not the API's.
// Prints one line per answer that breaks the description and a count.
//
//   node validate.mjs SPEC ANSWERS NODE_DIR
// NODE_DIR: where tests/openapi/install put the packages.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const [specFile, answersDir, nodeDir] = process.argv.slice(2);
if (!specFile || !answersDir || !nodeDir) {
	console.error('usage: validate.mjs SPEC ANSWERS NODE_DIR');
	process.exit(2);
}
const require = createRequire(path.join(path.resolve(nodeDir), 'package.json'));
const yaml = require('js-yaml');
const Ajv2020 = require('ajv/dist/2020').default;
const addFormats = require('ajv-formats').default;
const spec = yaml.load(fs.readFileSync(specFile, 'utf8'));
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ components: spec.components }, 'spec');

// Resolves a local $ref of the description.
function deref(obj) {
	while (obj && obj.$ref) {
		const parts = obj.$ref.replace(/^#\//, '').split('/');
		obj = parts.reduce((o, k) => o[k.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
	}
	return obj;
}

// A schema of the description, its $refs resolved by ajv in 'spec'.
const compiled = new Map();
function validator(schema) {
	const key = JSON.stringify(schema);
	if (!compiled.has(key)) {
		const fixed = JSON.parse(key.replace(/"#\/components\//g, '"spec#/components/'));
		compiled.set(key, ajv.compile(fixed));
	}
	return compiled.get(key);
}

function listeners(item) {
	return (item.servers || spec.servers).map((s) => s['x-listener']);
}

// The last header block curl wrote (after any 100 Continue): names
// lower-cased, each name's values (a name may come more than once).
function parseHeaders(text) {
	const blocks = text.replace(/\r/g, '').split(/\n(?=HTTP\/)/);
	const headers = new Map();
	for (const line of blocks[blocks.length - 1].split('\n').slice(1)) {
		const i = line.indexOf(':');
		if (i <= 0) continue;
		const name = line.slice(0, i).trim().toLowerCase();
		if (!headers.has(name)) headers.set(name, []);
		headers.get(name).push(line.slice(i + 1).trim());
	}
	return headers;
}

function errorsText(v) {
	return ajv.errorsText(v.errors, { dataVar: 'body' });
}

// The problems of one answer with a response object of the description.
function checkResponse(resp, ans, where) {
	const problems = [];
	resp = deref(resp);
	for (const [name, h0] of Object.entries(resp.headers || {})) {
		const h = deref(h0);
		const values = ans.headers.get(name.toLowerCase());
		if (!values) {
			if (h.required) problems.push(`header ${name} missing`);
			continue;
		}
		const value = values.join(', ');
		const schema = h.schema || {};
		const data = schema.type === 'integer' && /^-?\d+$/.test(value) ? Number(value) : value;
		const v = validator(schema);
		if (!v(data)) problems.push(`header ${name}: ${JSON.stringify(value)}: ${ajv.errorsText(v.errors, { dataVar: name })}`);
	}
	const type = (ans.headers.get('content-type') || [''])[0];
	const content = resp.content || {};
	const media = Object.keys(content).find((m) => m === type) ||
		Object.keys(content).find((m) => m.split(';')[0].trim() === type.split(';')[0].trim());
	if (Object.keys(content).length > 0 && media === undefined) {
		problems.push(`Content-Type ${JSON.stringify(type)}, not one of ${Object.keys(content).join(', ')}`);
	} else if (media !== undefined && media.split(';')[0] === 'application/json' && ans.method !== 'HEAD') {
		ans.validated = true;
		let body;
		try {
			body = JSON.parse(ans.body);
		} catch (e) {
			problems.push(`body is no JSON: ${e.message}`);
		}
		if (body !== undefined) {
			const v = validator(content[media].schema || {});
			if (!v(body)) problems.push(`body ${ans.body.trim().slice(0, 200)}: ${errorsText(v)}`);
		}
	}
	return problems.map((p) => `${where}: ${p}`);
}

// The path item of a templated path ("/read/{name}") that path matches:
// a parameter is what is left between the literal parts, '/' included
// (a counter's name holds one; the responder checks it, 400 otherwise).
function templated(p) {
	for (const [tpl, item] of Object.entries(spec.paths)) {
		if (!tpl.includes('{')) continue;
		const re = new RegExp('^' + tpl.split(/\{[^}]+\}/)
			.map((lit) => lit.replace(/[.*+?^$()|[\]\\]/g, '\\$&')).join('.*') + '$');
		if (re.test(p)) return item;
	}
	return undefined;
}

function checkAnswer(ans) {
	const name = `${ans.method} ${ans.path} (${ans.listener}) -> ${ans.status}`;
	const item = spec.paths[ans.path] || templated(ans.path);
	const isJson = /^application\/json\b/.test((ans.headers.get('content-type') || [''])[0]);
	ans.json = isJson && ans.method !== 'HEAD';
	if (!item || !listeners(item).includes(ans.listener)) {
		// Not an API path here: a JSON answer is an Error.
		if (!isJson) return [];
		return checkResponse({ content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
			ans, `${name} (no such path in the description: an Error)`);
	}
	const op = item[ans.method.toLowerCase()];
	if (!op && ans.method === 'OPTIONS' && /^(204|403)$/.test(ans.status) &&
		listeners(item).includes('public')) {
		// a CORS preflight, answered by lighttpd (etc/cors.lua)
		const resp = ans.status === '204' ? 'Preflight' : 'CrossOriginRefused';
		return checkResponse({ $ref: `#/components/responses/${resp}` }, ans,
			`${name} (a preflight: components/responses/${resp})`);
	}
	if (!op) {
		const resp = ans.status === '405' ? 'MethodNotAllowed' : 'Refused';
		const problems = checkResponse({ $ref: `#/components/responses/${resp}` }, ans,
			`${name} (method not listed: components/responses/${resp})`);
		if (resp === 'MethodNotAllowed') {
			// Allow names exactly the methods the path lists.
			const listed = ['get', 'head', 'post', 'put', 'delete', 'patch', 'options', 'trace']
				.filter((m) => item[m]).map((m) => m.toUpperCase()).sort().join(', ');
			const allow = (ans.headers.get('allow') || []).join(', ').split(/,\s*/).sort().join(', ');
			if (allow !== listed) problems.push(`${name}: Allow ${JSON.stringify(allow)}, the path lists ${listed}`);
		} else if (!/^(400|411|413|414|431|501|505)$/.test(ans.status)) {
			problems.push(`${name}: status not described for a method the path does not list`);
		}
		return problems;
	}
	const resp = op.responses[ans.status] || op.responses[`${ans.status[0]}XX`];
	if (!resp) return [`${name}: status ${ans.status} not described (${Object.keys(op.responses).join(', ')})`];
	return checkResponse(resp, ans, name);
}

// The path as lighttpd routes it: query dropped, %-escapes decoded,
// repeated slashes merged, dot segments resolved ("//time", "/x/../time"
// and "/%74ime" are /time).
function serverPath(raw) {
	let p = raw.split('?')[0];
	try {
		p = decodeURIComponent(p);
	} catch {
		return p;
	}
	const out = [];
	const segs = p.replace(/\/+/g, '/').split('/');
	segs.forEach((seg, i) => {
		if (seg === '..') out.length > 1 ? out.pop() : null;
		else if (seg !== '.') out.push(seg);
		if ((seg === '.' || seg === '..') && i === segs.length - 1) out.push('');
	});
	return out.join('/') || '/';
}

const read = (dir, f) => {
	try {
		return fs.readFileSync(path.join(dir, f), 'latin1');
	} catch {
		return '';
	}
};
let answers = 0, json = 0, validated = 0;
const failures = [];
for (const entry of fs.readdirSync(answersDir).sort()) {
	const dir = path.join(answersDir, entry);
	if (!fs.statSync(dir).isDirectory()) continue;
	const [listener, method, rawPath] = read(dir, 'request').split('\n');
	const status = read(dir, 'status').trim();
	// curl could not connect, or timed out: no answer to check.
	if (!/^[1-5]\d\d$/.test(status)) continue;
	const ans = {
		listener, method, status,
		path: serverPath(rawPath),
		headers: parseHeaders(read(dir, 'headers')),
		body: Buffer.from(read(dir, 'body'), 'latin1').toString('utf8'),
	};
	answers++;
	for (const p of checkAnswer(ans)) failures.push(p);
	if (ans.json) json++;
	if (ans.validated) validated++;
}
for (const f of failures) console.log(`openapi: ${f}`);
console.log(`openapi: ${answers} answers, ${json} with a JSON body, ${validated} bodies validated against ${path.basename(specFile)}; ${failures.length} break it`);
process.exit(failures.length > 0 ? 1 : 0);
