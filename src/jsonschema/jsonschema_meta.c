/*-------------------------------------------------------------------------
 *
 * jsonschema_meta.c
 *	  The built-in JSON Schema draft-07 metaschema, so that a "$ref" to
 *	  "http://json-schema.org/draft-07/schema#" resolves without a network.
 *	  Text of http://json-schema.org/draft-07/schema (with readOnly and
 *	  writeOnly), compacted.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "jsonschema_int.h"

const char *const ek_draft07_metaschema =
	"{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"$id\":\"http://jso"
	"n-schema.org/draft-07/schema#\",\"title\":\"Core schema meta-schema\",\"defi"
	"nitions\":{\"schemaArray\":{\"type\":\"array\",\"minItems\":1,\"items\":{\"$ref\":\""
	"#\"}},\"nonNegativeInteger\":{\"type\":\"integer\",\"minimum\":0},\"nonNegativeI"
	"ntegerDefault0\":{\"allOf\":[{\"$ref\":\"#/definitions/nonNegativeInteger\"},"
	"{\"default\":0}]},\"simpleTypes\":{\"enum\":[\"array\",\"boolean\",\"integer\",\"nu"
	"ll\",\"number\",\"object\",\"string\"]},\"stringArray\":{\"type\":\"array\",\"items\""
	":{\"type\":\"string\"},\"uniqueItems\":true,\"default\":[]}},\"type\":[\"object\","
	"\"boolean\"],\"properties\":{\"$id\":{\"type\":\"string\",\"format\":\"uri-referenc"
	"e\"},\"$schema\":{\"type\":\"string\",\"format\":\"uri\"},\"$ref\":{\"type\":\"string\""
	",\"format\":\"uri-reference\"},\"$comment\":{\"type\":\"string\"},\"title\":{\"type"
	"\":\"string\"},\"description\":{\"type\":\"string\"},\"default\":true,\"readOnly\":"
	"{\"type\":\"boolean\",\"default\":false},\"writeOnly\":{\"type\":\"boolean\",\"defa"
	"ult\":false},\"examples\":{\"type\":\"array\",\"items\":true},\"multipleOf\":{\"ty"
	"pe\":\"number\",\"exclusiveMinimum\":0},\"maximum\":{\"type\":\"number\"},\"exclus"
	"iveMaximum\":{\"type\":\"number\"},\"minimum\":{\"type\":\"number\"},\"exclusiveMi"
	"nimum\":{\"type\":\"number\"},\"maxLength\":{\"$ref\":\"#/definitions/nonNegativ"
	"eInteger\"},\"minLength\":{\"$ref\":\"#/definitions/nonNegativeIntegerDefaul"
	"t0\"},\"pattern\":{\"type\":\"string\",\"format\":\"regex\"},\"additionalItems\":{\""
	"$ref\":\"#\"},\"items\":{\"anyOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#/definitions/schem"
	"aArray\"}],\"default\":true},\"maxItems\":{\"$ref\":\"#/definitions/nonNegativ"
	"eInteger\"},\"minItems\":{\"$ref\":\"#/definitions/nonNegativeIntegerDefault"
	"0\"},\"uniqueItems\":{\"type\":\"boolean\",\"default\":false},\"contains\":{\"$ref"
	"\":\"#\"},\"maxProperties\":{\"$ref\":\"#/definitions/nonNegativeInteger\"},\"mi"
	"nProperties\":{\"$ref\":\"#/definitions/nonNegativeIntegerDefault0\"},\"requ"
	"ired\":{\"$ref\":\"#/definitions/stringArray\"},\"additionalProperties\":{\"$r"
	"ef\":\"#\"},\"definitions\":{\"type\":\"object\",\"additionalProperties\":{\"$ref\""
	":\"#\"},\"default\":{}},\"properties\":{\"type\":\"object\",\"additionalPropertie"
	"s\":{\"$ref\":\"#\"},\"default\":{}},\"patternProperties\":{\"type\":\"object\",\"ad"
	"ditionalProperties\":{\"$ref\":\"#\"},\"propertyNames\":{\"format\":\"regex\"},\"d"
	"efault\":{}},\"dependencies\":{\"type\":\"object\",\"additionalProperties\":{\"a"
	"nyOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#/definitions/stringArray\"}]}},\"propertyN"
	"ames\":{\"$ref\":\"#\"},\"const\":true,\"enum\":{\"type\":\"array\",\"items\":true,\"m"
	"inItems\":1,\"uniqueItems\":true},\"type\":{\"anyOf\":[{\"$ref\":\"#/definitions"
	"/simpleTypes\"},{\"type\":\"array\",\"items\":{\"$ref\":\"#/definitions/simpleTy"
	"pes\"},\"minItems\":1,\"uniqueItems\":true}]},\"format\":{\"type\":\"string\"},\"c"
	"ontentMediaType\":{\"type\":\"string\"},\"contentEncoding\":{\"type\":\"string\"}"
	",\"if\":{\"$ref\":\"#\"},\"then\":{\"$ref\":\"#\"},\"else\":{\"$ref\":\"#\"},\"allOf\":{\"$"
	"ref\":\"#/definitions/schemaArray\"},\"anyOf\":{\"$ref\":\"#/definitions/schem"
	"aArray\"},\"oneOf\":{\"$ref\":\"#/definitions/schemaArray\"},\"not\":{\"$ref\":\"#"
	"\"}},\"default\":true}";
