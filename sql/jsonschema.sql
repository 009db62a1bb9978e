-- JSON Schema draft-07 validation: eventkit.schema_valid / schema_errors.
CREATE EXTENSION IF NOT EXISTS eventkit;

-- Errors one per line, in the order reported.
CREATE FUNCTION errs(s jsonb, i jsonb)
RETURNS TABLE (keyword text, "instancePath" text, "schemaPath" text, message text)
LANGUAGE sql AS $$
	SELECT e->>'keyword', e->>'instancePath', e->>'schemaPath', e->>'message'
	FROM jsonb_array_elements(eventkit.schema_errors(s, i)) WITH ORDINALITY AS x(e, n)
	ORDER BY n
$$;

-- valid: empty array, true
SELECT eventkit.schema_errors('{"type": "object"}', '{}'),
       eventkit.schema_valid('{"type": "object"}', '{}');
-- the raw jsonb shape of an error
SELECT eventkit.schema_errors('{"type": "number"}', '"x"');

-- ---- type ----
SELECT * FROM errs('{"type": "number"}', '"12"');
SELECT * FROM errs('{"type": "integer"}', '1.5');
SELECT * FROM errs('{"type": ["string", "null"]}', '1');
SELECT eventkit.schema_valid('{"type": "integer"}', '1.0') AS one_point_zero_is_integer,
       eventkit.schema_valid('{"type": "integer"}', '1e3') AS exponent_is_integer,
       eventkit.schema_valid('{"type": "number"}', 'true') AS bool_is_not_number;

-- ---- numbers ----
SELECT * FROM errs('{"minimum": 0, "maximum": 10}', '-1');
SELECT * FROM errs('{"minimum": 0, "maximum": 10}', '10.000000000000000000001');
SELECT * FROM errs('{"exclusiveMinimum": 0, "exclusiveMaximum": 1}', '0');
SELECT * FROM errs('{"exclusiveMinimum": 0, "exclusiveMaximum": 1}', '1');
SELECT * FROM errs('{"multipleOf": 0.01}', '19.999');
-- exact: decimals and huge integers
SELECT eventkit.schema_valid('{"multipleOf": 0.01}', '19.99') AS cents,
       eventkit.schema_valid('{"multipleOf": 0.1}', '0.3') AS tenth,
       eventkit.schema_valid('{"multipleOf": 3}', '123456789012345678901234567890123456789') AS huge_multiple,
       eventkit.schema_valid('{"multipleOf": 7}', '123456789012345678901234567890123456789') AS huge_not_multiple,
       eventkit.schema_valid('{"maximum": 18446744073709551615}', '18446744073709551616') AS above_2_64,
       eventkit.schema_valid('{"minimum": 0.1}', '0.09999999999999999999999') AS just_below,
       eventkit.schema_valid('{"type": "integer", "multipleOf": 0.5}', '1e308') AS big_float;

-- ---- strings: lengths in code points, ECMA-262 patterns, formats ----
SELECT * FROM errs('{"minLength": 2, "maxLength": 3}', '"a"');
SELECT * FROM errs('{"minLength": 2, "maxLength": 3}', '"abcd"');
SELECT eventkit.schema_valid('{"maxLength": 2}', '"ÿé"') AS two_latin1,
       eventkit.schema_valid('{"maxLength": 1}', '"💩"') AS one_astral,
       eventkit.schema_valid('{"minLength": 3}', '"日本"') AS two_cjk_short,
       eventkit.schema_valid('{"minLength": 2, "maxLength": 2}', '"日本"') AS two_cjk;
SELECT * FROM errs('{"pattern": "^o[0-9]+$"}', '"x17"');
SELECT eventkit.schema_valid('{"pattern": "^o\\d+$"}', '"o17"') AS ecma_digit,
       eventkit.schema_valid('{"pattern": "^\\d$"}', '"٣"') AS arabic_digit_is_not_d,
       eventkit.schema_valid('{"pattern": "^\\w+$"}', '"héllo"') AS w_is_ascii,
       eventkit.schema_valid('{"pattern": "b"}', '"abc"') AS unanchored,
       eventkit.schema_valid('{"pattern": "^.$"}', '"\n"') AS dot_no_newline,
       eventkit.schema_valid('{"pattern": "^日本$"}', '"日本"') AS unicode_literal,
       eventkit.schema_valid('{"pattern": "\\bfoo\\b"}', '"a foo b"') AS word_boundary;
-- simple patterns run on a fast matcher, the rest on PostgreSQL's regex engine: same answers
SELECT p, v, eventkit.schema_valid(jsonb_build_object('pattern', p), to_jsonb(v)) AS valid
FROM (VALUES ('^[a-z]{2,3}$', 'ab'), ('^[a-z]{2,3}$', 'abcd'), ('^[a-z]{2,3}$', 'a'),
             ('^[^0-9]+$', 'héllo'), ('^[^0-9]+$', 'h3llo'), ('^\w+@\w+\.com$', 'a_1@b.com'),
             ('^a.c$', 'a€c'), ('^a.c$', E'a\nc'), ('x*y?z+', 'zzz'), ('^\d{4}-\d{2}$', '2026-11'),
             ('^(ab)+$', 'abab'), ('^(ab)+$', 'aba'), ('^(?<y>\d+)-\k<y>$', '12-12'), ('^(?<y>\d+)-\k<y>$', '12-13'),
             ('cat|dog', 'hotdog'), ('^[]', 'x'), ('^\$\d+(\.\d\d)?$', '$12.50'), ('^é+$', 'ééé')) AS t(p, v)
ORDER BY p, v;
SELECT * FROM errs('{"format": "email"}', '"not an email"');
SELECT f, v, eventkit.schema_valid(jsonb_build_object('format', f), to_jsonb(v)) AS valid
FROM (VALUES ('date-time', '2026-11-23T08:00:00.000Z'), ('date-time', '2026-02-29T08:00:00Z'),
             ('date-time', '2026-11-23 08:00:00Z'), ('date', '2024-02-29'), ('date', '2023-02-29'),
             ('time', '23:59:60Z'), ('time', '12:00:00'),
             ('email', 'user1@example.com'), ('email', 'a..b@example.com'),
             ('hostname', 'www.example.com'), ('hostname', '-bad.example'),
             ('ipv4', '192.168.0.1'), ('ipv4', '192.168.0.01'),
             ('ipv6', '::1'), ('ipv6', '1::2::3'),
             ('uri', 'https://example.com/a?b#c'), ('uri', '/relative'),
             ('uri-reference', '/relative'), ('uuid', '2c8e1b2a-65b7-4d3e-9a51-0c6c1f1f5d2e'),
             ('uuid', '2c8e1b2a65b74d3e9a510c6c1f1f5d2e'), ('regex', '^[a-z]+$'), ('regex', '^(abc]'),
             ('json-pointer', '/a~1b'), ('json-pointer', '/a~2b')) AS t(f, v)
ORDER BY f, v;
-- formats ignore other types
SELECT eventkit.schema_valid('{"format": "date-time"}', '12') AS number_ignored;

-- ---- arrays ----
SELECT * FROM errs('{"minItems": 2, "maxItems": 3}', '[1]');
SELECT * FROM errs('{"minItems": 2, "maxItems": 3}', '[1,2,3,4]');
SELECT * FROM errs('{"items": {"type": "integer"}}', '[1, "a", 3, 4.5]');
SELECT * FROM errs('{"items": [{"type": "string"}], "additionalItems": false}', '["a", 1]');
SELECT * FROM errs('{"items": [{"type": "string"}], "additionalItems": {"type": "boolean"}}', '[1, true, 2]');
SELECT * FROM errs('{"uniqueItems": true}', '[1, {"a": [1]}, 1.0, {"a": [1]}]');
SELECT * FROM errs('{"contains": {"const": 5}}', '[1, 2]');

-- ---- objects ----
SELECT * FROM errs('{"required": ["sku", "price"], "properties": {"price": {"type": "number"}}}', '{"price": "x"}');
SELECT * FROM errs('{"properties": {"a": true}, "additionalProperties": false}', '{"a": 1, "b": 2, "c": 3}');
SELECT * FROM errs('{"patternProperties": {"^x-": {"type": "string"}}, "additionalProperties": {"type": "integer"}}',
                   '{"x-a": 1, "y": "s", "z": 2}');
SELECT * FROM errs('{"minProperties": 2}', '{"a": 1}');
SELECT * FROM errs('{"maxProperties": 1}', '{"a": 1, "b": 2}');
SELECT * FROM errs('{"dependencies": {"a": ["b", "c"], "d": {"required": ["e"]}}}', '{"a": 1, "d": 2}');
SELECT * FROM errs('{"propertyNames": {"maxLength": 3}}', '{"abcd": 1}');
-- instance paths are JSON pointers (~0, ~1), schema paths too
SELECT * FROM errs('{"properties": {"a/b": {"properties": {"c~d": {"items": {"type": "string"}}}}}}',
                   '{"a/b": {"c~d": ["x", 2]}}');

-- ---- any type ----
SELECT * FROM errs('{"enum": ["USD", "EUR"]}', '"CHF"');
SELECT eventkit.schema_valid('{"enum": [1, {"a": [1, 2]}]}', '1.00') AS number_by_value,
       eventkit.schema_valid('{"enum": [1, {"a": [1, 2]}]}', '{"a": [1, 2.0]}') AS deep_equal,
       eventkit.schema_valid('{"enum": [false]}', '0') AS false_is_not_zero;
SELECT * FROM errs('{"const": {"a": 1}}', '{"a": 2}');
SELECT * FROM errs('{"anyOf": [{"type": "string"}, {"minimum": 5}]}', '1');
SELECT * FROM errs('{"anyOf": [{"type": "string"}, {"minimum": 5}]}', '7');
SELECT * FROM errs('{"oneOf": [{"type": "number"}, {"minimum": 5}]}', '7');
SELECT * FROM errs('{"oneOf": [{"type": "string"}, {"minimum": 5}]}', '1');
SELECT * FROM errs('{"allOf": [{"type": "number"}, {"minimum": 5}]}', '1');
SELECT * FROM errs('{"not": {"type": "string"}}', '"a"');
SELECT * FROM errs('{"if": {"minimum": 10}, "then": {"multipleOf": 10}, "else": {"maximum": 5}}', '15');
SELECT * FROM errs('{"if": {"minimum": 10}, "then": {"multipleOf": 10}, "else": {"maximum": 5}}', '7');
SELECT * FROM errs('false', '1');
SELECT * FROM errs('{"properties": {"a": false}}', '{"a": 1}');

-- ---- $ref, $id, definitions, recursion, the built-in metaschema ----
SELECT * FROM errs('{"definitions": {"pos": {"type": "integer", "minimum": 1}},
                     "properties": {"q": {"$ref": "#/definitions/pos"}}}', '{"q": 0}');
-- a recursive tree
SELECT eventkit.schema_valid(s, '{"v": 1, "kids": [{"v": 2, "kids": []}, {"v": 3}]}') AS tree_ok,
       eventkit.schema_valid(s, '{"v": 1, "kids": [{"v": 2, "kids": [{"v": "x"}]}]}') AS tree_bad
FROM (SELECT '{"type": "object", "required": ["v"],
               "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#"}}}}'::jsonb AS s) AS x;
-- $id changes the base URI; a plain-name fragment is an anchor
SELECT eventkit.schema_valid('{"$id": "http://example.com/root.json",
                               "properties": {"a": {"$ref": "item.json"}, "b": {"$ref": "#num"}},
                               "definitions": {"i": {"$id": "item.json", "type": "string"},
                                               "n": {"$id": "#num", "type": "number"}}}',
                             '{"a": "x", "b": 1}') AS ids_ok,
       eventkit.schema_valid('{"$id": "http://example.com/root.json",
                               "properties": {"a": {"$ref": "item.json"}},
                               "definitions": {"i": {"$id": "item.json", "type": "string"}}}',
                             '{"a": 1}') AS ids_bad;
-- the draft-07 metaschema is built in
SELECT eventkit.schema_valid('{"$ref": "http://json-schema.org/draft-07/schema#"}', '{"type": "string", "minLength": 1}') AS meta_ok,
       eventkit.schema_valid('{"$ref": "http://json-schema.org/draft-07/schema#"}', '{"minLength": -1}') AS meta_bad;
SELECT * FROM errs('{"$ref": "http://json-schema.org/draft-07/schema#"}', '{"type": "strin"}');

-- ---- Ajv parity: the benchmark's schema (shared/peers/ajv_bench.js) on three bad
-- events gives the errors Ajv 8 (allErrors) gives, listed here in Ajv's order;
-- eventkit's order differs (jsonb does not keep the schema's key order) ----
SELECT n, x->>'keyword' AS keyword, x->>'instancePath' AS "instancePath",
       x->>'schemaPath' AS "schemaPath", x->>'message' AS message
FROM (VALUES (1, '{"order_id":"x1","revenue":"12.50","currency":"CHF","products":[{"sku":"","price":-1,"quantity":1.5}],"coupon":12,"email":"nope","placed_at":"2026-13-01T00:00:00Z","extra":1}'::jsonb),
             (2, '{"revenue":1,"currency":"USD","products":[]}'::jsonb),
             (3, '{"order_id":"o1","revenue":1,"currency":"USD","products":[{"price":1,"quantity":1},{"sku":"a","price":1,"quantity":0}]}'::jsonb)) AS c(n, e),
     jsonb_array_elements(eventkit.schema_errors('{"type":"object","required":["order_id","revenue","currency","products"],"additionalProperties":false,"properties":{"order_id":{"type":"string","pattern":"^o[0-9]+$"},"checkout_id":{"type":"string"},"revenue":{"type":"number","minimum":0},"shipping":{"type":"number","minimum":0},"tax":{"type":"number","minimum":0},"discount":{"type":"number"},"coupon":{"type":["string","null"],"maxLength":32},"currency":{"enum":["USD","EUR","GBP","JPY"]},"affiliation":{"type":"string"},"email":{"type":"string","format":"email"},"placed_at":{"type":"string","format":"date-time"},"products":{"type":"array","minItems":1,"maxItems":50,"items":{"type":"object","required":["sku","price","quantity"],"properties":{"sku":{"type":"string","minLength":1},"name":{"type":"string"},"price":{"type":"number","minimum":0},"quantity":{"type":"integer","minimum":1},"category":{"type":"string"}}}}}}', c.e)) AS x
ORDER BY n, "instancePath", keyword;
-- Ajv 8.20.0 reported:
--   1 additionalProperties |  | #/additionalProperties | must NOT have additional properties
--   1 pattern | /order_id | #/properties/order_id/pattern | must match pattern "^o[0-9]+$"
--   1 type | /revenue | #/properties/revenue/type | must be number
--   1 type | /coupon | #/properties/coupon/type | must be string,null
--   1 enum | /currency | #/properties/currency/enum | must be equal to one of the allowed values
--   1 format | /email | #/properties/email/format | must match format "email"
--   1 format | /placed_at | #/properties/placed_at/format | must match format "date-time"
--   1 minLength | /products/0/sku | #/properties/products/items/properties/sku/minLength | must NOT have fewer than 1 characters
--   1 minimum | /products/0/price | #/properties/products/items/properties/price/minimum | must be >= 0
--   1 type | /products/0/quantity | #/properties/products/items/properties/quantity/type | must be integer
--   2 required |  | #/required | must have required property 'order_id'
--   2 minItems | /products | #/properties/products/minItems | must NOT have fewer than 1 items
--   3 required | /products/0 | #/properties/products/items/required | must have required property 'sku'
--   3 minimum | /products/1/quantity | #/properties/products/items/properties/quantity/minimum | must be >= 1

-- ---- bad schemas: clear errors at compile time ----
\set VERBOSITY default
SELECT eventkit.schema_valid('{"minimum": "a"}', '1');
SELECT eventkit.schema_valid('{"properties": {"x": {"minLength": -1}}}', '1');
SELECT eventkit.schema_valid('{"type": "strin"}', '1');
SELECT eventkit.schema_valid('{"required": "sku"}', '1');
SELECT eventkit.schema_valid('{"pattern": "^(abc"}', '1');
SELECT eventkit.schema_valid('{"patternProperties": {"[a-": {}}}', '1');
SELECT eventkit.schema_valid('{"$ref": "#"}', '1');
SELECT eventkit.schema_valid('{"definitions": {"a": {"$ref": "#/definitions/b"}, "b": {"allOf": [{"$ref": "#/definitions/a"}]}},
                               "properties": {"x": {"$ref": "#/definitions/a"}}}', '1');
SELECT eventkit.schema_valid('{"$ref": "#/definitions/missing"}', '1');
SELECT eventkit.schema_valid('{"$ref": "http://example.com/other.json"}', '1');
SELECT eventkit.schema_valid('{"properties": {"d": {"format": "duration"}}}', '1');
SELECT eventkit.schema_valid('{"unevaluatedProperties": false}', '1');
SELECT eventkit.schema_valid('{"dependentRequired": {"a": ["b"]}}', '1');
SELECT eventkit.schema_valid('{"$recursiveRef": "#"}', '1');
SELECT eventkit.schema_valid('{"minimun": 1}', '1');
SELECT eventkit.schema_valid('{"$schema": "https://json-schema.org/draft/2020-12/schema"}', '1');
SELECT eventkit.schema_valid('{"multipleOf": 0}', '1');
SELECT eventkit.schema_valid('{"allOf": []}', '1');
SELECT eventkit.schema_valid('[]', '1');
SELECT eventkit.schema_valid('{"items": 3}', '1');
SELECT eventkit.schema_valid('{"pattern": "\\p{L}"}', '1');
SELECT eventkit.schema_valid('{"pattern": "(?i)abc"}', '1');
SELECT eventkit.schema_valid('{"pattern": "\\a"}', '1');
\set VERBOSITY terse
-- annotations and "x-" extensions are accepted; recursion through a property is fine
SELECT eventkit.schema_valid('{"title": "t", "description": "d", "default": 1, "examples": [1], "$comment": "c",
                               "readOnly": true, "x-owner": "growth", "$schema": "http://json-schema.org/draft-07/schema#"}', '1') AS annotations;
SELECT eventkit.schema_valid('{"properties": {"next": {"$ref": "#"}}}', '{"next": {"next": {}}}') AS recursion_with_progress;

-- ---- deep instances and schemas do not crash ----
SELECT eventkit.schema_valid('{"items": {"$ref": "#"}}', (repeat('[', 5000) || repeat(']', 5000))::jsonb) AS deep_ok;
DO $$
BEGIN
	PERFORM eventkit.schema_valid('{"items": {"$ref": "#"}}', (repeat('[', 100000) || repeat(']', 100000))::jsonb);
EXCEPTION WHEN others THEN
	RAISE NOTICE 'deep instance: %', SQLERRM;
END $$;
DO $$
BEGIN
	PERFORM eventkit.schema_valid((repeat('{"not":', 100000) || '{}' || repeat('}', 100000))::jsonb, '1');
EXCEPTION WHEN others THEN
	RAISE NOTICE 'deep schema: %', SQLERRM;
END $$;

-- ---- one schema, many rows: compiled once, cached per backend ----
CREATE TABLE orders AS
SELECT i, jsonb_build_object('order_id', 'o' || i, 'revenue', i * 1.25,
                             'currency', (ARRAY['USD', 'EUR', 'GBP', 'JPY', 'CHF'])[i % 5 + 1]) AS e
FROM generate_series(1, 1000) AS i;
SELECT count(*) FILTER (WHERE eventkit.schema_valid(
	'{"type": "object", "required": ["order_id", "revenue", "currency"],
	  "properties": {"order_id": {"type": "string", "pattern": "^o[0-9]+$"},
	                 "revenue": {"type": "number", "minimum": 0},
	                 "currency": {"enum": ["USD", "EUR", "GBP", "JPY"]}}}', e)) AS valid,
       count(*) AS total
FROM orders;
-- the schema may come from a column too (compared by bytes)
SELECT s.n, count(*) FILTER (WHERE eventkit.schema_valid(s.schema, o.e)) AS valid
FROM orders AS o,
     (VALUES (1, '{"properties": {"revenue": {"maximum": 100}}}'::jsonb),
             (2, '{"properties": {"revenue": {"maximum": 1000}}}'::jsonb)) AS s(n, schema)
GROUP BY s.n ORDER BY s.n;

-- ---- fuzz: truncated and mutated schemas and instances never crash ----
SELECT setseed(0.42);
-- every path in a JSON document
CREATE FUNCTION schema_paths(doc jsonb) RETURNS TABLE (path text[])
LANGUAGE sql AS $$
	WITH RECURSIVE p(path, v) AS (
		SELECT ARRAY[]::text[], doc
		UNION ALL
		SELECT p.path || e.k, e.v
		FROM p, LATERAL (
			SELECT key, value FROM jsonb_each(CASE WHEN jsonb_typeof(p.v) = 'object' THEN p.v END)
			UNION ALL
			SELECT (ord - 1)::text, value
			FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p.v) = 'array' THEN p.v END)
				WITH ORDINALITY AS a(value, ord)) AS e(k, v))
	SELECT path FROM p WHERE path <> '{}'
$$;
CREATE FUNCTION fuzz(iterations int) RETURNS TABLE (outcome text, n bigint)
LANGUAGE plpgsql AS $$
DECLARE
	schemas text[] := ARRAY[
		'{"type":"object","required":["a"],"properties":{"a":{"type":"string","pattern":"^[a-z]+$","maxLength":5},"b":{"type":"array","items":{"$ref":"#/definitions/n"},"uniqueItems":true}},"additionalProperties":false,"definitions":{"n":{"type":"number","multipleOf":0.5,"minimum":-3}}}',
		'{"anyOf":[{"const":{"x":[1,2]}},{"oneOf":[{"format":"email"},{"format":"date-time"}]}],"not":{"enum":[null,true]}}',
		'{"if":{"properties":{"k":{"const":1}}},"then":{"required":["v"]},"else":{"dependencies":{"v":["w"]}},"propertyNames":{"pattern":"^[kvw]$"}}'];
	instances text[] := ARRAY[
		'{"a":"abc","b":[1,1.5,-3]}', '{"x":[1,2]}', '"u@example.com"', '{"k":1,"v":[{"w":null}]}', '[1,[2,[3,{"a":"b"}]]]'];
	chars text := '{}[]":,0123456789.-eE truefalsnul\#$/^*+?()|~';
	vals text[] := ARRAY['1', '-1', '0.5', '"a"', '"^(["', '[]', '[{}]', '{}', 'true', 'false', 'null',
	                      '{"$ref": "#"}', '{"$ref": "#/definitions/n"}', '{"type": "strin"}', '"integer"',
	                      '{"format": "email"}', '1e400', '["a", "a"]', '{"x-y": 1}'];
	s text;
	i text;
	r text;
	k int;
	path text[];
BEGIN
	CREATE TEMP TABLE fuzz_out (outcome text);
	FOR it IN 1..iterations LOOP
		s := schemas[1 + floor(random() * array_length(schemas, 1))::int];
		i := instances[1 + floor(random() * array_length(instances, 1))::int];
		IF random() < 0.5 THEN
			-- structural: replace one value of the schema by another JSON value
			SELECT p.path INTO path FROM schema_paths(s::jsonb) AS p
			ORDER BY p.path OFFSET floor(random() * (SELECT count(*) FROM schema_paths(s::jsonb)))::int LIMIT 1;
			s := jsonb_set(s::jsonb, path, vals[1 + floor(random() * array_length(vals, 1))::int]::jsonb)::text;
		END IF;
		-- textual: truncate, or change one character of the schema or instance
		FOR m IN 1..floor(random() * 3)::int LOOP
			k := 1 + floor(random() * length(s))::int;
			CASE floor(random() * 3)::int
				WHEN 0 THEN s := left(s, k);
				WHEN 1 THEN s := overlay(s placing substr(chars, 1 + floor(random() * length(chars))::int, 1) from k for 1);
				ELSE i := overlay(i placing substr(chars, 1 + floor(random() * length(chars))::int, 1)
				                  from 1 + floor(random() * length(i))::int for 1);
			END CASE;
		END LOOP;
		BEGIN
			r := CASE WHEN jsonb_array_length(eventkit.schema_errors(s::jsonb, i::jsonb)) = 0
			          THEN 'valid' ELSE 'invalid' END;
		EXCEPTION
			WHEN invalid_text_representation THEN r := 'not json';
			WHEN invalid_parameter_value THEN r := 'schema rejected';
		END;
		INSERT INTO fuzz_out VALUES (r);
	END LOOP;
	RETURN QUERY SELECT f.outcome, count(*) FROM fuzz_out AS f GROUP BY f.outcome ORDER BY f.outcome;
END $$;
SELECT * FROM fuzz(2000);

DROP TABLE orders;
DROP FUNCTION fuzz(int);
DROP FUNCTION schema_paths(jsonb);
DROP FUNCTION errs(jsonb, jsonb);
DROP EXTENSION eventkit;
