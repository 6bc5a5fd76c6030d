package query

// AllowedFunction reports whether a query's SQL may call the function
// (lowercase name): the allowlist in functions.go, plus SLS names renamed
// by SLSAlias.
func AllowedFunction(name string) bool { return allowedFunctions[name] || slsAliases[name] != "" }

// SLSAlias returns the DuckDB function an SLS function name is rewritten to.
func SLSAlias(name string) (string, bool) {
	to, ok := slsAliases[name]
	return to, ok
}

// allowedFunctions is the allowlist of scalar, aggregate and window
// functions a query's SQL may call (lowercase names). None of them reads
// files, settings, the environment, the catalog or other databases.
var allowedFunctions = setOf(
	// aggregates
	"count", "sum", "avg", "mean", "min", "max", "approx_count_distinct", "approx_quantile",
	"quantile", "quantile_cont", "quantile_disc", "median", "mode", "stddev", "stddev_samp",
	"stddev_pop", "variance", "var_samp", "var_pop", "arg_max", "arg_min", "argmax", "argmin",
	"max_by", "min_by", "first", "last", "any_value", "string_agg", "group_concat", "list",
	"array_agg", "histogram", "bool_and", "bool_or", "bit_and", "bit_or", "bit_xor",
	"count_if", "countif", "sum_no_overflow", "corr", "covar_pop", "covar_samp", "entropy",
	"kurtosis", "skewness", "product", "fsum", "favg", "regr_slope", "regr_intercept",
	"regr_count", "regr_r2", "regr_avgx", "regr_avgy", "mad", "reservoir_quantile",
	"bitstring_agg", "grouping", "grouping_id",
	// window
	"row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
	"first_value", "last_value", "nth_value",
	// strings
	"lower", "upper", "lcase", "ucase", "length", "len", "strlen", "char_length",
	"character_length", "octet_length", "bit_length", "substr", "substring", "left", "right",
	"concat", "concat_ws", "trim", "ltrim", "rtrim", "replace", "split_part", "string_split",
	"str_split", "string_split_regex", "regexp_matches", "regexp_extract", "regexp_replace",
	"regexp_full_match", "regexp_extract_all", "regexp_split_to_array", "regexp_escape",
	"contains", "starts_with", "ends_with", "prefix", "suffix", "strpos", "instr", "position",
	"lpad", "rpad", "repeat", "reverse", "md5", "sha1", "sha256", "hash", "format", "printf",
	"chr", "ascii", "unicode", "ord", "levenshtein", "damerau_levenshtein", "hamming",
	"jaccard", "jaro_similarity", "jaro_winkler_similarity", "mismatches", "editdist3",
	"like_escape", "ilike_escape", "nfc_normalize", "strip_accents", "translate",
	"array_to_string", "list_aggr", "to_base64", "from_base64", "base64", "url_encode",
	"url_decode", "bar", "format_bytes", "formatreadablesize", "formatreadabledecimalsize",
	"to_hex", "hex", "unhex", "from_hex", "split", "string_to_array", "parse_path",
	"parse_dirname", "parse_filename", "parse_dirpath", "inet_aton",
	// json (values only; read_json* is not here)
	"json_extract", "json_extract_string", "json_extract_path", "json_extract_path_text",
	"json_value", "json_type", "json_keys", "json_array_length", "json_valid", "to_json",
	"json_object", "json_array", "json_contains", "json_exists", "json_structure",
	"json_merge_patch", "json_quote", "json", "json_transform", "from_json",
	"json_transform_strict", "from_json_strict", "json_group_array", "json_group_object",
	"json_pretty",
	// numbers
	"abs", "ceil", "ceiling", "floor", "round", "round_even", "sqrt", "cbrt", "pow", "power",
	"ln", "log", "log2", "log10", "exp", "sign", "signbit", "greatest", "least", "mod", "trunc",
	"pi", "random", "degrees", "radians", "sin", "cos", "tan", "asin", "acos", "atan", "atan2",
	"even", "factorial", "gcd", "lcm", "isnan", "isinf", "isfinite", "bit_count", "xor",
	"divide", "add", "subtract", "multiply", "fdiv", "fmod", "gamma", "lgamma", "nextafter",
	// dates and times
	"now", "current_date", "current_time", "current_timestamp", "today", "get_current_time",
	"get_current_timestamp", "date_trunc", "datetrunc", "date_part", "datepart", "date_diff",
	"datediff", "date_sub", "datesub", "date_add", "strftime", "strptime", "try_strptime",
	"epoch", "epoch_ms", "epoch_us", "epoch_ns", "to_timestamp", "make_timestamp", "make_date",
	"make_time", "year", "month", "day", "hour", "minute", "second", "millisecond",
	"microsecond", "dayofweek", "dayofmonth", "dayofyear", "isodow", "week", "weekofyear",
	"weekday", "yearweek", "quarter", "era", "century", "decade", "millennium", "isoyear",
	"time_bucket", "age", "last_day", "monthname", "dayname", "to_days", "to_hours",
	"to_minutes", "to_seconds", "to_milliseconds", "to_microseconds", "to_years", "to_months",
	"to_weeks", "timezone", "make_timestamptz", "epoch_ms_to_timestamp",
	// conditionals, types
	"coalesce", "ifnull", "nullif", "if", "typeof", "greatest", "least", "try",
	"error", "cast_to_type",
	// lists, maps, structs
	"list_value", "list_pack", "list_extract", "list_element", "list_contains", "list_has",
	"list_transform", "list_apply", "array_apply", "apply", "list_filter", "array_filter",
	"filter", "list_reduce", "reduce", "array_length", "array_contains", "array_has",
	"list_sort", "array_sort", "list_reverse_sort", "list_distinct", "array_distinct",
	"list_unique", "list_aggregate", "array_aggregate", "list_concat", "array_concat",
	"list_cat", "list_slice", "array_slice", "list_position", "list_indexof", "array_position",
	"list_has_any", "list_has_all", "list_zip", "list_min", "list_max", "list_sum", "list_avg",
	"list_count", "list_first", "list_last", "list_string_agg", "array_value", "element_at",
	"map", "map_extract", "map_extract_value", "map_keys", "map_values", "map_entries",
	"map_from_entries", "map_contains", "cardinality", "flatten", "unnest", "generate_series",
	"range", "struct_pack", "struct_extract", "struct_insert", "row", "array_extract",
	"list_select", "list_where", "list_grade_up", "array_to_json", "to_json",
)

// tableFunctions may appear in FROM: they generate values and read nothing.
var tableFunctions = setOf("unnest", "generate_series", "range")

// slsAliases renames SLS (Presto-style) functions DuckDB spells
// differently. date_format also gets its MySQL format literal translated
// for strftime (%i → %M, %s → %S, ...).
var slsAliases = map[string]string{
	"approx_percentile":   "approx_quantile",
	"approx_distinct":     "approx_count_distinct",
	"arbitrary":           "any_value",
	"from_unixtime":       "to_timestamp",
	"to_unixtime":         "epoch",
	"date_format":         "strftime",
	"date_parse":          "strptime",
	"regexp_like":         "regexp_matches",
	"json_extract_scalar": "json_extract_string",
	"json_size":           "json_array_length",
	"day_of_week":         "dayofweek",
	"day_of_year":         "dayofyear",
	"day_of_month":        "dayofmonth",
	"stddev_sample":       "stddev_samp",
	"variance_sample":     "var_samp",
	"bitwise_and_agg":     "bit_and",
	"bitwise_or_agg":      "bit_or",
	"strpos":              "strpos",
	"codepoint":           "unicode",
}

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
