// validate.mjs - check Kubernetes manifests against the Kubernetes API
// schemas, offline (the kubernetes-models package carries them).
//
//   node deploy/k8s/validate/validate.mjs FILE.yaml...
//
// Every document must have a known apiVersion and kind and validate against
// its schema (types, required fields, enums, no unknown fields where the
// schema forbids them). Prints one line per document; exit status 1 if one
// does not validate.
import { readFileSync } from "node:fs";
import yaml from "js-yaml";

async function modelFor(apiVersion, kind) {
  const group = apiVersion.includes("/") ? apiVersion : `v1`;
  try {
    const mod = await import(`kubernetes-models/${group}/${kind}`);
    return mod[kind] || mod.default;
  } catch {
    return null;
  }
}

let failed = 0;
for (const file of process.argv.slice(2)) {
  const docs = yaml.loadAll(readFileSync(file, "utf8")).filter((d) => d);
  for (const [i, doc] of docs.entries()) {
    const where = `${file}[${i}] ${doc.kind}/${doc.metadata?.name ?? "?"}`;
    const Model = doc.apiVersion && doc.kind ? await modelFor(doc.apiVersion, doc.kind) : null;
    if (!Model) {
      console.log(`not valid: ${where}: unknown apiVersion/kind ${doc.apiVersion}/${doc.kind}`);
      failed++;
      continue;
    }
    try {
      new Model(doc).validate();
      console.log(`valid: ${where}`);
    } catch (e) {
      console.log(`not valid: ${where}: ${e.message}`);
      failed++;
    }
  }
}
process.exit(failed ? 1 : 0);
