-- The internationalized host name formats ("idn-hostname", the domain of
-- "idn-email") and the A-labels of "hostname" are checked by libidn2
-- (IDNA2008) and ICU (UTS #46, Bidi and contextual rules), not by "any
-- non-ASCII character is a letter" (src/jsonschema/jsonschema_idn.c).  The whole
-- optional/format suite runs in test/t/020.
CREATE EXTENSION eventkit;

CREATE TEMP TABLE names (format text, name text, why text);
INSERT INTO names VALUES
  ('idn-hostname', '실례.테스트', 'Hangul'),
  ('idn-hostname', 'bücher.example', 'Latin with umlaut'),
  ('idn-hostname', 'BÜCHER.example', 'upper case maps to lower case'),
  ('idn-hostname', 'παράδειγμα.δοκιμή', 'Greek'),
  ('idn-hostname', 'a。b', 'ideographic full stop separates labels'),
  ('idn-hostname', 'a．b', 'fullwidth full stop separates labels'),
  ('idn-hostname', 'xn--ihqwcrb4cv8a8dqg056pqjye', 'an A-label'),
  ('idn-hostname', 'www.example.com', 'ASCII'),
  ('idn-hostname', 'l·l', 'middle dot between two l'),
  ('idn-hostname', 'א׳ב', 'geresh after Hebrew'),
  ('idn-hostname', '〮실례.테스트', 'U+302E first: a combining mark'),
  ('idn-hostname', '실〮례.테스트', 'U+302E: disallowed by IDNA2008'),
  ('idn-hostname', 'a·l', 'middle dot without l before it (CONTEXTO)'),
  ('idn-hostname', '・', 'katakana middle dot alone (CONTEXTO)'),
  ('idn-hostname', 'ب٠۰', 'both kinds of Arabic digits (CONTEXTO)'),
  ('idn-hostname', E'क\u200dष', 'zero width joiner without virama (CONTEXTJ)'),
  ('idn-hostname', 'aא', 'left-to-right label with a Hebrew letter (Bidi)'),
  ('idn-hostname', '0a.א', 'digit-first label in a right-to-left name (Bidi)'),
  ('idn-hostname', 'xn--X', 'invalid Punycode'),
  ('idn-hostname', 'xn---9uc', 'Punycode that does not re-encode to itself'),
  ('idn-hostname', 'xn--example-', 'an A-label of ASCII only'),
  ('idn-hostname', 'ex ample.com', 'a space'),
  ('idn-hostname', 'host_name', 'an underscore'),
  ('idn-hostname', 'bücher.', 'trailing dot'),
  ('idn-hostname', 'bücher。', 'trailing ideographic full stop'),
  ('idn-hostname', 'a..b', 'empty label'),
  ('idn-hostname', '', 'empty'),
  ('idn-hostname', repeat('ü', 60), 'its A-label is over 63 octets'),
  ('idn-hostname', repeat('ü.', 127) || 'ü', 'over 253 octets as ASCII'),
  ('idn-hostname', '-bücher', 'leading hyphen'),
  ('idn-hostname', '🎉.example', 'an emoji (disallowed)'),
  ('idn-email', '실례@실례.테스트', 'Hangul'),
  ('idn-email', 'δοκιμή@example.com', 'non-ASCII local part'),
  ('idn-email', 'user@bücher.example', 'non-ASCII domain'),
  ('idn-email', 'user@a·l.example', 'domain breaks a contextual rule'),
  ('idn-email', 'user@〮실례.테스트', 'domain starts with a combining mark'),
  ('idn-email', 'user@bücher.', 'domain with a trailing dot'),
  ('hostname', 'xn--9n2bp8q.xn--9t4b11yi5a', 'valid A-labels'),
  ('hostname', 'xn--ll-0ea', 'A-label of l·l'),
  ('hostname', 'xn--X', 'invalid Punycode'),
  ('hostname', 'xn--al-0ea', 'A-label of a·l (CONTEXTO)'),
  ('hostname', 'xn--07jt112bpxg.xn--9t4b11yi5a', 'A-label with U+302E'),
  ('hostname', 'XN--aa---o47jg78q', '"--" in the 3rd and 4th positions'),
  ('hostname', 'bücher.example', 'non-ASCII is not a hostname');
SELECT format, CASE WHEN length(name) > 40 THEN left(name, 12) || format('... (%s characters)', length(name)) ELSE name END AS name,
       eventkit.schema_valid(jsonb_build_object('format', format), to_jsonb(name)) AS valid, why
  FROM names ORDER BY format, valid DESC, why;

-- the error as a tracking plan reports it
SELECT eventkit.schema_errors('{"properties": {"host": {"format": "idn-hostname"}}}',
                              '{"host": "a·l.example"}');

-- on ASCII, idn-hostname answers as hostname
SELECT count(*) AS ascii_names,
       count(*) FILTER (WHERE eventkit.schema_valid('{"format": "hostname"}', to_jsonb(n))
                          IS DISTINCT FROM eventkit.schema_valid('{"format": "idn-hostname"}', to_jsonb(n))) AS differ
  FROM (SELECT unnest(ARRAY['example.com', 'EXAMPLE.com', 'a', '1host', '-a', 'a-', 'a--b', 'ab--c', 'xn--a',
                            'xn--ll-0ea', 'a.b.c', 'a..b', '.a', 'a.', '', 'a_b', repeat('a', 63), repeat('a', 64),
                            repeat('a.', 126) || 'a', repeat('a.', 127) || 'a']) AS n) x;

DROP EXTENSION eventkit;
