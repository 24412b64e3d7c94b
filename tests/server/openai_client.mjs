// Talks to `rotor serve` with the official OpenAI client library, as an application would;
// prints one JSON object with what it saw (tests/test_serve.cpp checks it).
// Usage: node openai_client.mjs BASE_URL API_KEY
import OpenAI from 'openai';

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120000 });
const messages = [{ role: 'user', content: 'Once upon a time' }];
const out = {};

const models = await client.models.list();
out.models = models.data.map((m) => m.id);

const chat = await client.chat.completions.create({
  model: 'rotor', messages, max_tokens: 16, temperature: 0,
});
out.chat = {
  text: chat.choices[0].message.content,
  role: chat.choices[0].message.role,
  finish_reason: chat.choices[0].finish_reason,
  usage: chat.usage,
};

const stream = await client.chat.completions.create({
  model: 'rotor', messages, max_tokens: 16, temperature: 0, stream: true,
  stream_options: { include_usage: true },
});
out.stream = { text: '', chunks: 0, finish_reason: null, usage: null };
for await (const chunk of stream) {
  out.stream.chunks += 1;
  if (chunk.choices.length > 0) {
    out.stream.text += chunk.choices[0].delta.content ?? '';
    if (chunk.choices[0].finish_reason) out.stream.finish_reason = chunk.choices[0].finish_reason;
  }
  if (chunk.usage) out.stream.usage = chunk.usage;
}

const completion = await client.completions.create({
  model: 'rotor', prompt: 'Once upon a time', max_tokens: 16, temperature: 0,
});
out.completion = { text: completion.choices[0].text, usage: completion.usage };

try {
  await client.chat.completions.create({ model: 'rotor', messages: [], max_tokens: 4 });
  out.error = null;
} catch (e) {
  out.error = { status: e.status, type: e.error?.type ?? null, param: e.error?.param ?? null };
}

console.log(JSON.stringify(out));
