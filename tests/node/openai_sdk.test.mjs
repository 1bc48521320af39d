// Joule's HTTP API through the openai SDK, as application code calls it.
// tests/openai_sdk_test.sh starts joule_server, asks the gRPC API (through
// joule_cli) for the reference texts and passes everything in the
// environment:
//   JOULE_HTTP_URL   http://127.0.0.1:<port>/v1
//   JOULE_API_KEY    the server's key
//   JOULE_EXPECTED   JSON: {model, prompt, chat_prompt, max_tokens,
//                    seed, text, chat_text, sampled_text}
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import OpenAI from 'openai';

const expected = JSON.parse(fs.readFileSync(process.env.JOULE_EXPECTED, 'utf8'));
const client = new OpenAI({
  baseURL: process.env.JOULE_HTTP_URL,
  apiKey: process.env.JOULE_API_KEY,
  maxRetries: 0,
  timeout: 60_000,
});
const model = expected.model;
const SOURCES = ['measured', 'simulated', 'modeled'];
const greedy = {
  model,
  max_tokens: expected.max_tokens,
  temperature: 0,
  ignore_eos: true,  // Joule extension: exactly max_tokens tokens.
};

function checkUsage(usage) {
  assert.ok(usage.prompt_tokens > 0, 'prompt_tokens');
  assert.equal(usage.completion_tokens, expected.max_tokens);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
}

function checkRequestJoule(joule) {
  assert.ok(SOURCES.includes(joule.energy_source), joule.energy_source);
  assert.ok(joule.energy_joules > 0, 'energy_joules');
  assert.ok(Math.abs(joule.joules_per_token * expected.max_tokens - joule.energy_joules) <
            1e-9 + 1e-6 * joule.energy_joules, 'joules_per_token');
  assert.ok(joule.time_to_first_token_seconds > 0, 'ttft');
  assert.ok(joule.queue_seconds >= 0, 'queue');
  assert.equal(joule.failovers, 0);
  assert.equal(typeof joule.device, 'string');
}

test('lists the served model with its shape', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [model]);
  assert.equal(models.data[0].object, 'model');
  assert.ok(models.data[0].joule.max_context > 0);
  assert.ok(models.data[0].joule.parameters > 0);
});

test('greedy completion: the gRPC API text, usage and energy', async () => {
  const r = await client.completions.create({ ...greedy, prompt: expected.prompt });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].text, expected.text);
  assert.equal(r.choices[0].finish_reason, 'length');
  checkUsage(r.usage);
  checkRequestJoule(r.joule);
});

test('streamed completion: the same text, a joule figure per chunk, usage last', async () => {
  const stream = await client.completions.create({
    ...greedy, prompt: expected.prompt, stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let tokens = 0;
  let finish = null;
  let usage = null;
  let energy = 0;
  for await (const chunk of stream) {
    if (chunk.usage) {
      usage = chunk;
      continue;
    }
    const c = chunk.choices[0];
    if (c.finish_reason) {
      finish = c.finish_reason;
      continue;
    }
    assert.equal(finish, null, 'no chunk after the finish');
    text += c.text;
    tokens += 1;
    assert.ok(SOURCES.includes(chunk.joule.energy_source));
    assert.ok(chunk.joule.energy_joules > 0);
    assert.ok(chunk.joule.latency_seconds >= 0);
    energy += chunk.joule.energy_joules;
  }
  assert.equal(text, expected.text);
  assert.equal(tokens, expected.max_tokens);
  assert.equal(finish, 'length');
  assert.ok(usage, 'a usage chunk');
  assert.deepEqual(usage.choices, []);
  checkUsage(usage.usage);
  checkRequestJoule(usage.joule);
  // The request's total is the sum of its tokens' figures.
  assert.ok(Math.abs(usage.joule.energy_joules - energy) < 1e-6 * energy + 1e-12);
});

test('same seed, same sampled text as the gRPC API', async () => {
  const r = await client.completions.create({
    model, prompt: expected.prompt, max_tokens: expected.max_tokens,
    temperature: 1, seed: expected.seed, ignore_eos: true,
  });
  assert.equal(r.choices[0].text, expected.sampled_text);
  assert.equal(r.joule.seed, expected.seed);
});

test('chat completion through the default template equals the gRPC text', async () => {
  const messages = [{ role: 'user', content: expected.chat_user }];
  const r = await client.chat.completions.create({ ...greedy, messages });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(r.choices[0].message.content, expected.chat_text);
  checkUsage(r.usage);
  checkRequestJoule(r.joule);

  const stream = await client.chat.completions.create({
    ...greedy, messages, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let role = null;
  let usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.role) role = role ?? c.delta.role;
      text += c.delta.content ?? '';
    }
  }
  assert.equal(role, 'assistant');
  assert.equal(text, expected.chat_text);
  checkUsage(usage);
});

test('chat logprobs: one entry per token with its alternatives', async () => {
  const r = await client.chat.completions.create({
    ...greedy, max_tokens: 8, messages: [{ role: 'user', content: expected.chat_user }],
    logprobs: true, top_logprobs: 3,
  });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, 8);
  for (const entry of content) {
    assert.ok(entry.logprob <= 0);
    assert.equal(entry.top_logprobs.length, 3);
    // Greedy: the chosen token is the most likely one.
    assert.equal(entry.top_logprobs[0].logprob, entry.logprob);
    assert.ok(entry.top_logprobs[0].logprob >= entry.top_logprobs[1].logprob);
  }
});

test('n samples of one prompt come back as n choices', async () => {
  const r = await client.completions.create({
    model, prompt: expected.prompt, max_tokens: 6, n: 3, seed: 11,
    ignore_eos: true,
  });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
  assert.equal(r.usage.completion_tokens, 18);
});

test('a bad temperature is the SDK\'s BadRequestError naming it', async () => {
  await assert.rejects(
    client.completions.create({ model, prompt: 'x', temperature: -1 }),
    (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, String(e));
      assert.equal(e.status, 400);
      assert.equal(e.param, 'temperature');
      assert.match(e.message, /temperature/);
      return true;
    });
});

test('an unknown model is NotFoundError; a wrong key AuthenticationError', async () => {
  await assert.rejects(
    client.completions.create({ model: 'gpt-4', prompt: 'x' }),
    (e) => e instanceof OpenAI.NotFoundError && /gpt-4/.test(e.message));
  const stranger = new OpenAI({
    baseURL: process.env.JOULE_HTTP_URL, apiKey: 'wrong', maxRetries: 0,
  });
  await assert.rejects(
    stranger.completions.create({ model, prompt: 'x', max_tokens: 1 }),
    (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
});
