// validate.mjs - check Kubernetes manifests against the Kubernetes API
// schemas, offline (the kubernetes-models package carries them).
//
//   node deploy/k8s/validate/validate.mjs FILE.yaml...
//
// Every document must have a known apiVersion and kind and validate against
// its schema (types, required fields, enums, no unknown fields where the
// schema forbids them). Prints one line per document; exit status 1 if one
// does not validate.
//
// Then what the schemas cannot see, over all the files together:
//   - every Service's selector matches the pod labels of a workload;
//   - no Secret carries data (Secrets are made by the operator, never kept here);
//   - no container argument or environment value holds a database URL with a
//     password (scone-cas refuses one: `ps` shows it; use passfile=).
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

const WORKLOADS = ["Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"];

function podTemplates(doc) {
  if (doc.kind === "Pod") return [{ labels: doc.metadata?.labels ?? {}, spec: doc.spec ?? {} }];
  if (!WORKLOADS.includes(doc.kind)) return [];
  const t = doc.spec?.template ?? {};
  return [{ labels: t.metadata?.labels ?? {}, spec: t.spec ?? {} }];
}

const PASSWORD_URL = /postgres(ql)?:\/\/[^/@\s]*:[^/@\s]*@|[?&]password=/i;

// Cross-document checks; returns the number of problems printed.
function crossChecks(all) {
  let bad = 0;
  const report = (where, what) => {
    console.log(`not valid: ${where}: ${what}`);
    bad++;
  };
  const pods = all.flatMap(({ doc }) => podTemplates(doc));
  for (const { where, doc } of all) {
    if (doc.kind === "Service" && doc.spec?.selector) {
      const sel = Object.entries(doc.spec.selector);
      if (!pods.some((p) => sel.every(([k, v]) => p.labels[k] === v)))
        report(where, `selector ${JSON.stringify(doc.spec.selector)} matches no workload's pods`);
    }
    if (doc.kind === "Secret" && (doc.data || doc.stringData))
      report(where, "a Secret with data: make it with kubectl, keep it out of the manifests");
    for (const p of podTemplates(doc)) {
      for (const c of [...(p.spec.initContainers ?? []), ...(p.spec.containers ?? [])]) {
        const values = [...(c.command ?? []), ...(c.args ?? []), ...(c.env ?? []).map((e) => e.value ?? "")];
        if (values.some((v) => PASSWORD_URL.test(String(v))))
          report(where, `container ${c.name}: a database URL with a password (ps shows it; use passfile=)`);
      }
    }
  }
  return bad;
}

let failed = 0;
const all = [];
for (const file of process.argv.slice(2)) {
  const docs = yaml.loadAll(readFileSync(file, "utf8")).filter((d) => d);
  for (const [i, doc] of docs.entries()) {
    const where = `${file}[${i}] ${doc.kind}/${doc.metadata?.name ?? "?"}`;
    all.push({ where, doc });
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
failed += crossChecks(all);
process.exit(failed ? 1 : 0);
