// tally - manifests.mjs: offline checks of Kubernetes manifests for helm/check.
//
//   node manifests.mjs validate FILE...   every document: known kind, the
//       Kubernetes schema (types, required fields, enums) and no unknown
//       field anywhere; PrometheusRule expressions must parse as PromQL.
//       Kinds no npm package models (the VerticalPodAutoscaler) are
//       checked against their CustomResourceDefinition's openAPIV3Schema,
//       as published upstream and kept in schemas/.
//   node manifests.mjs json FILE...       the documents as one JSON array
//   node manifests.mjs schema FILE        values.schema.json: self-contained
//       (only "#/" references), every object closed (additionalProperties
//       false, or a schema for free-form maps), every property described.
//
// Prints one line per document or problem; exits 1 on any problem.
import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";
import Ajv from "ajv";
import { ObjectMeta } from "@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta";
import * as k8s from "@kubernetes/client-node";
import { parser as promqlParser } from "@prometheus-io/lezer-promql";

const require = createRequire(import.meta.url);

// Kinds the chart (and the Argo CD example, and schemas/) may render, by apiVersion.
// Core kinds: kubernetes-models validates them, @kubernetes/client-node's
// type map (prefix + kind, e.g. V1Deployment) knows their fields.
const CORE = {
  "v1": ["ConfigMap", "Secret", "Service", "ServiceAccount", "Pod"],
  "apps/v1": ["Deployment"],
  "batch/v1": ["Job"],
  "networking.k8s.io/v1": ["Ingress", "NetworkPolicy"],
  "policy/v1": ["PodDisruptionBudget"],
  "autoscaling/v2": ["HorizontalPodAutoscaler"],
  "apiextensions.k8s.io/v1": ["CustomResourceDefinition"],
};
// Custom resources: the models validate them; their field trees come
// from the models' TypeScript declarations.
const CUSTOM = {
  "monitoring.coreos.com/v1": {
    pkg: "@kubernetes-models/prometheus-operator",
    kinds: ["ServiceMonitor", "PrometheusRule"],
  },
  "argoproj.io/v1alpha1": {
    pkg: "@kubernetes-models/argo-cd",
    kinds: ["Application"],
  },
};

// Custom resources known by their CustomResourceDefinition: every
// schemas/*.yaml, one CRD each, by "group/version kind" of its served
// versions.
const SCHEMAS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "schemas");

function readDocuments(files) {
  const docs = [];
  for (const file of files) {
    yaml.loadAll(readFileSync(file, "utf8"), (doc) => {
      if (doc !== null && doc !== undefined) docs.push({ file, doc });
    });
  }
  return docs;
}

// --- unknown fields in core kinds: walk client-node's attribute maps ---

const SCALARS = new Set(["string", "number", "boolean", "Date", "object", "any", "IntOrString"]);

function unknownFieldsByTypeMap(value, type, where, out) {
  if (value === null || value === undefined) return;
  let m;
  if ((m = /^Array<(.+)>$/.exec(type))) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFieldsByTypeMap(v, m[1], `${where}[${i}]`, out));
    return;
  }
  if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    if (typeof value === "object") for (const [k, v] of Object.entries(value)) unknownFieldsByTypeMap(v, m[1], `${where}.${k}`, out);
    return;
  }
  if (SCALARS.has(type)) return;
  const model = k8s[type];
  if (!model || typeof model.getAttributeTypeMap !== "function") {
    out.push(`${where}: no type map for ${type}`);
    return;
  }
  if (typeof value !== "object" || Array.isArray(value)) return; // the schema reports the type
  const attrs = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [key, v] of Object.entries(value)) {
    if (!attrs.has(key)) out.push(`${where}.${key}: unknown field (not in ${type})`);
    else unknownFieldsByTypeMap(v, attrs.get(key), `${where}.${key}`, out);
  }
}

// --- unknown fields in custom resources: a field tree read from the
// models' .d.ts ("name"?: {...}, Array<{...}>, [key: string]: ...) -------

function fieldTreeFromDeclaration(file, iface) {
  const lines = readFileSync(file, "utf8").split("\n");
  const start = lines.findIndex((l) => l.includes(`export interface ${iface} {`));
  if (start < 0) throw new Error(`${iface} not found in ${file}`);
  const root = { fields: new Map(), open: false };
  const stack = [root];
  for (const line of lines.slice(start + 1)) {
    const t = line.trim();
    const node = stack[stack.length - 1];
    let m;
    if ((m = /^"([^"]+)"\??: (Array<)?\{$/.exec(t))) {
      const child = { fields: new Map(), open: false };
      node.fields.set(m[1], child);
      stack.push(child);
    } else if ((m = /^"([^"]+)"\??: (.+);$/.exec(t))) {
      // A leaf; metadata is checked with the core type map.
      node.fields.set(m[1], m[2] === "IObjectMeta" ? { objectMeta: true } : { leaf: true });
    } else if (/^\[key: string\]/.test(t)) {
      node.open = true;
      if (t.endsWith("{")) stack.push({ fields: new Map(), open: true });
    } else if (/^\}(>)?(\[\])?;?$/.test(t)) {
      stack.pop();
      if (stack.length === 0) break;
    }
  }
  return root;
}

function unknownFieldsByTree(value, node, where, out) {
  if (value === null || value === undefined || node.leaf) return;
  if (node.objectMeta) return unknownFieldsByTypeMap(value, "V1ObjectMeta", where, out);
  if (Array.isArray(value)) return value.forEach((v, i) => unknownFieldsByTree(v, node, `${where}[${i}]`, out));
  if (typeof value !== "object" || node.open) return;
  for (const [key, v] of Object.entries(value)) {
    const child = node.fields.get(key);
    if (!child) out.push(`${where}.${key}: unknown field`);
    else unknownFieldsByTree(v, child, `${where}.${key}`, out);
  }
}

// --- custom resources by their CRD's openAPIV3Schema ---------------------------
//
// Read as the API server reads a structural schema: an object's fields
// are those of "properties" unless it has additionalProperties or
// x-kubernetes-preserve-unknown-fields (the server drops or, with
// strict field validation, refuses any other field, so here it is an
// error); x-kubernetes-int-or-string comes with its own anyOf. CEL
// rules (x-kubernetes-validations) cannot be evaluated offline: a
// document that sets a field carrying them is refused, so nothing
// passes unchecked. metadata is checked as an ObjectMeta.

function closedSchema(node) {
  if (Array.isArray(node)) return node.map(closedSchema);
  if (node === null || typeof node !== "object") return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    out[key] = key === "properties"
      ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, closedSchema(v)]))
      : closedSchema(value);
  }
  if (out.type === "object" && out.properties && !("additionalProperties" in out)
      && out["x-kubernetes-preserve-unknown-fields"] !== true) out.additionalProperties = false;
  return out;
}

function crdAjv() {
  const ajv = new Ajv({ allErrors: true, strictTypes: false });
  ajv.addVocabulary(["x-kubernetes-int-or-string", "x-kubernetes-map-type", "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource"]);
  ajv.addKeyword({
    keyword: "x-kubernetes-validations",
    errors: true,
    validate: function cel(rules) {
      cel.errors = [{ keyword: "x-kubernetes-validations", params: {},
        message: `has CEL rules, not evaluated offline: ${rules.map((r) => r.rule).join("; ")}` }];
      return false;
    },
  });
  ajv.addFormat("int32", { type: "number", validate: (n) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat("int64", { type: "number", validate: (n) => Number.isSafeInteger(n) });
  return ajv;
}

let crdKinds = null;

function crdValidators() {
  if (crdKinds) return crdKinds;
  const ajv = crdAjv();
  crdKinds = new Map();
  for (const file of readdirSync(SCHEMAS_DIR).filter((f) => f.endsWith(".yaml")).sort()) {
    const crd = yaml.load(readFileSync(path.join(SCHEMAS_DIR, file), "utf8"));
    if (crd?.kind !== "CustomResourceDefinition") throw new Error(`schemas/${file}: not a CustomResourceDefinition`);
    for (const v of crd.spec.versions.filter((v) => v.served)) {
      const schema = closedSchema(v.schema.openAPIV3Schema);
      crdKinds.set(`${crd.spec.group}/${v.name} ${crd.spec.names.kind}`, { file, validate: ajv.compile(schema) });
    }
  }
  return crdKinds;
}

function crdErrors(doc, found) {
  const errors = [];
  if (!found.validate(doc)) {
    for (const e of found.validate.errors) {
      const where = e.instancePath || "/";
      const extra = e.params?.additionalProperty ? ` (${e.params.additionalProperty})`
        : e.params?.allowedValues ? ` (${e.params.allowedValues.join(", ")})` : "";
      errors.push(`schema (${found.file}): ${where} ${e.message}${extra}`);
    }
  }
  if (doc.metadata !== undefined) {
    try {
      new ObjectMeta(doc.metadata).validate();
    } catch (e) {
      errors.push(`metadata: ${e.message}`);
    }
    unknownFieldsByTypeMap(doc.metadata, "V1ObjectMeta", `${doc.kind}.metadata`, errors);
  }
  return errors;
}

// --- per document ------------------------------------------------------------

async function modelClass(apiVersion, kind) {
  if (CORE[apiVersion]?.includes(kind)) {
    const mod = await import(`kubernetes-models/${apiVersion === "v1" ? "v1" : apiVersion}`);
    const prefix = apiVersion.split("/").pop().replace(/^v/, "V");
    return { Model: mod[kind], typeName: `${prefix[0].toUpperCase()}${prefix.slice(1)}${kind}` };
  }
  const byCrd = crdValidators().get(`${apiVersion} ${kind}`);
  if (byCrd) return { crd: byCrd };
  const custom = CUSTOM[apiVersion];
  if (custom?.kinds.includes(kind)) {
    const dir = path.join(path.dirname(require.resolve(`${custom.pkg}/package.json`)), apiVersion);
    const mod = await import(`${custom.pkg}/${apiVersion}/${kind}`);
    return { Model: mod[kind], tree: fieldTreeFromDeclaration(path.join(dir, `${kind}.d.ts`), `I${kind}`) };
  }
  return null;
}

function promqlErrors(doc) {
  const errors = [];
  (doc.spec?.groups ?? []).forEach((g, gi) =>
    (g.rules ?? []).forEach((r, ri) => {
      let bad = false;
      promqlParser.parse(String(r.expr)).iterate({ enter: (n) => { if (n.type.isError) bad = true; } });
      if (bad) errors.push(`spec.groups[${gi}].rules[${ri}].expr: not valid PromQL: ${r.expr}`);
    }));
  return errors;
}

async function validateDocument({ file, doc }) {
  const name = `${doc?.kind ?? "?"}/${doc?.metadata?.name ?? "?"} (${path.basename(file)})`;
  const found = doc && (await modelClass(doc.apiVersion, doc.kind));
  if (!found) return [`${name}: unknown apiVersion/kind ${doc?.apiVersion} ${doc?.kind}`];
  if (found.crd) return crdErrors(doc, found.crd).map((e) => `${name}: ${e}`);
  const errors = [];
  try {
    new found.Model(doc).validate();
  } catch (e) {
    errors.push(`schema: ${e.message}`);
  }
  if (found.typeName) unknownFieldsByTypeMap(doc, found.typeName, doc.kind, errors);
  else unknownFieldsByTree(doc, found.tree, doc.kind, errors);
  if (doc.kind === "PrometheusRule") errors.push(...promqlErrors(doc));
  return errors.map((e) => `${name}: ${e}`);
}

async function validate(files) {
  const docs = readDocuments(files);
  let bad = 0;
  if (docs.length === 0) {
    console.log("no documents");
    return 1;
  }
  for (const d of docs) {
    const errors = await validateDocument(d);
    if (errors.length === 0) console.log(`valid   ${d.doc.kind}/${d.doc.metadata?.name}`);
    for (const e of errors) console.log(`INVALID ${e}`);
    if (errors.length > 0) bad++;
  }
  console.log(`${docs.length} documents, ${bad} invalid`);
  return bad === 0 ? 0 : 1;
}

// --- values.schema.json --------------------------------------------------------

function schemaProblems(node, where, out) {
  if (Array.isArray(node)) return node.forEach((n, i) => schemaProblems(n, `${where}[${i}]`, out));
  if (node === null || typeof node !== "object") return;
  if (typeof node.$ref === "string" && !node.$ref.startsWith("#/")) out.push(`${where}: remote $ref ${node.$ref}`);
  const isObject = node.type === "object" || (Array.isArray(node.type) && node.type.includes("object"));
  if (isObject && !("additionalProperties" in node)) out.push(`${where}: object without additionalProperties`);
  if (isObject && node.additionalProperties === true) out.push(`${where}: additionalProperties is true`);
  if (node.properties && node.additionalProperties !== false) out.push(`${where}: object with properties is not closed`);
  for (const [key, prop] of Object.entries(node.properties ?? {}))
    if (typeof prop.description !== "string" || prop.description === "") out.push(`${where}.properties.${key}: no description`);
  for (const [key, child] of Object.entries(node)) schemaProblems(child, `${where}.${key}`, out);
}

function checkSchema(file) {
  const problems = [];
  schemaProblems(JSON.parse(readFileSync(file, "utf8")), "$", problems);
  for (const p of problems) console.log(`PROBLEM ${p}`);
  console.log(`${file}: ${problems.length} problems`);
  return problems.length === 0 ? 0 : 1;
}

const [command, ...args] = process.argv.slice(2);
const commands = {
  validate: () => validate(args),
  json: () => {
    console.log(JSON.stringify(readDocuments(args).map((d) => d.doc)));
    return 0;
  },
  schema: () => checkSchema(args[0]),
};
if (!commands[command] || args.length === 0) {
  console.error("usage: node manifests.mjs validate|json FILE... | schema values.schema.json");
  process.exit(2);
}
process.exitCode = await commands[command]();
