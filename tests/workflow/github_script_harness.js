// Runs an actions/github-script script the way the action does: as the body of an async
// function given require, github, context and core. `github` is a fake of Octokit that
// records every call (method path and arguments) into CALLS_FILE and answers from
// ANSWERS_FILE ({"rest.issues.listComments": [...]}), else with a small created object.
// usage: node github_script_harness.js SCRIPT_FILE CALLS_FILE ANSWERS_FILE
'use strict';
const fs = require('fs');

const [scriptFile, callsFile, answersFile] = process.argv.slice(2);
const answers = JSON.parse(fs.readFileSync(answersFile, 'utf8'));
const calls = [];

function api(path) {
  const call = async (args) => {
    calls.push({ method: path, args });
    const data = path in answers ? answers[path] : { id: calls.length, number: 7, html_url: 'https://github.test/acme/infra/issues/7' };
    return { data };
  };
  return new Proxy(call, {
    get: (target, name) => (name === 'path' ? path : name === 'then' ? undefined : api(`${path}.${String(name)}`)),
  });
}

const github = {
  rest: api('rest'),
  paginate: async (method, args) => {
    calls.push({ method: `paginate:${method.path}`, args });
    return answers[method.path] || [];
  },
};

function setOutput(name, value) {
  const delimiter = `ghadelimiter_${calls.length}_${Date.now()}`;
  fs.appendFileSync(process.env.GITHUB_OUTPUT, `${name}<<${delimiter}\n${value}\n${delimiter}\n`);
}

const core = {
  setOutput,
  setFailed: (message) => { console.error(`::error::${message}`); process.exitCode = 1; },
  notice: (message) => console.log(`::notice::${message}`),
  info: (message) => console.log(message),
  warning: (message) => console.log(`::warning::${message}`),
};

const [owner, repo] = (process.env.GITHUB_REPOSITORY || '/').split('/');
const context = {
  payload: JSON.parse(fs.readFileSync(process.env.GITHUB_EVENT_PATH, 'utf8')),
  eventName: process.env.GITHUB_EVENT_NAME,
  sha: process.env.GITHUB_SHA,
  actor: process.env.GITHUB_ACTOR,
  runId: Number(process.env.GITHUB_RUN_ID),
  serverUrl: process.env.GITHUB_SERVER_URL,
  repo: { owner, repo },
};

const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const script = new AsyncFunction('require', 'github', 'context', 'core', fs.readFileSync(scriptFile, 'utf8'));
script(require, github, context, core)
  .catch((error) => { console.error(error && error.stack ? error.stack : String(error)); process.exitCode = 1; })
  .finally(() => fs.writeFileSync(callsFile, JSON.stringify(calls)));
