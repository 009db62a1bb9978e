// Copied from shared/peers/ajv_bench.js for test/bench/validate.sh; the only
// addition: with EK_DUMP_DIR set, the schema and the 1,000 events are written
// there (schema.json, events.ndjson) before timing, so that eventkit validates
// exactly the same documents.
// Peer anchor for tracking-plan validation speed: Ajv 8 (compiled JSON Schema, draft-07) on one core.
// Same schema and event shape the eventkit validator benchmark uses. Usage: node ajv_bench.js [N]
const Ajv = require('ajv'); const addFormats = require('ajv-formats');
const schema = {
  type: 'object', required: ['order_id', 'revenue', 'currency', 'products'], additionalProperties: false,
  properties: {
    order_id: { type: 'string', pattern: '^o[0-9]+$' }, checkout_id: { type: 'string' },
    revenue: { type: 'number', minimum: 0 }, shipping: { type: 'number', minimum: 0 }, tax: { type: 'number', minimum: 0 },
    discount: { type: 'number' }, coupon: { type: ['string', 'null'], maxLength: 32 },
    currency: { enum: ['USD', 'EUR', 'GBP', 'JPY'] }, affiliation: { type: 'string' },
    email: { type: 'string', format: 'email' }, placed_at: { type: 'string', format: 'date-time' },
    products: { type: 'array', minItems: 1, maxItems: 50, items: { type: 'object', required: ['sku', 'price', 'quantity'],
      properties: { sku: { type: 'string', minLength: 1 }, name: { type: 'string' }, price: { type: 'number', minimum: 0 },
                    quantity: { type: 'integer', minimum: 1 }, category: { type: 'string' } } } }
  }
};
const ajv = new Ajv({ allErrors: true }); addFormats(ajv);
const validate = ajv.compile(schema);
const N = +(process.argv[2] || 2000000);
const events = [];
for (let i = 0; i < 1000; i++) events.push(JSON.parse(JSON.stringify({
  order_id: 'o' + i, checkout_id: 'c' + i, revenue: i * 1.25, shipping: 4.99, tax: 1.2, discount: i % 7 === 0 ? 5 : 0,
  coupon: i % 9 === 0 ? 'SAVE10' : null, currency: ['USD', 'EUR', 'GBP', 'JPY'][i % 4], affiliation: 'web',
  email: 'user' + i + '@example.com', placed_at: '2026-11-23T08:00:00.000Z',
  products: [{ sku: 's' + i, name: 'Shoe', price: 59.99, quantity: 1 + (i % 3), category: 'shoes' }, { sku: 't' + i, price: 9.5, quantity: 2 }]
})));
events[17].revenue = '12.50'; events[33].currency = 'CHF';      // ~0.2% violations
if (process.env.EK_DUMP_DIR) {
  const fs = require('fs');
  fs.writeFileSync(process.env.EK_DUMP_DIR + '/schema.json', JSON.stringify(schema) + '\n');
  fs.writeFileSync(process.env.EK_DUMP_DIR + '/events.ndjson', events.map(e => JSON.stringify(e)).join('\n') + '\n');
}
let ok = 0; for (let i = 0; i < 100000; i++) ok += validate(events[i % 1000]) ? 1 : 0; // warm-up
const t0 = process.hrtime.bigint(); ok = 0;
for (let i = 0; i < N; i++) ok += validate(events[i % 1000]) ? 1 : 0;
const s = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(JSON.stringify({ validator: 'ajv ' + require('ajv/package.json').version, validations: N, valid: ok, seconds: +s.toFixed(3), per_second: Math.round(N / s) }));
// with JSON.parse of each event included (what a server that receives text pays)
const texts = events.map(e => JSON.stringify(e)); const t1 = process.hrtime.bigint();
for (let i = 0; i < N / 4; i++) validate(JSON.parse(texts[i % 1000]));
const s1 = Number(process.hrtime.bigint() - t1) / 1e9;
console.log(JSON.stringify({ validator: 'ajv + JSON.parse', validations: N / 4, per_second: Math.round(N / 4 / s1) }));
