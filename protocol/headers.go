package protocol

// HTTP header names of the Log Service API, lowercase as the clients send
// them (net/http canonicalizes on receipt; Header.Get accepts either).
const (
	HeaderAuthorization = "Authorization"
	HeaderContentType   = "Content-Type"
	HeaderContentMD5    = "Content-MD5"
	HeaderContentLength = "Content-Length"
	HeaderDate          = "Date"
	HeaderHost          = "Host"
	HeaderUserAgent     = "User-Agent"

	HeaderAPIVersion      = "x-log-apiversion"      // APIVersion
	HeaderSignatureMethod = "x-log-signaturemethod" // SignatureMethodHMACSHA1 (v1)
	HeaderBodyRawSize     = "x-log-bodyrawsize"     // uncompressed body size; trust it only with x-log-compresstype
	HeaderCompressType    = "x-log-compresstype"    // lz4 | deflate | zstd; absent = uncompressed
	HeaderProject         = "x-log-project"         // project when not in the Host name
	HeaderMode            = "x-log-mode"            // ModeBatchGroup: body is an SlsLogPackageList
	HeaderLogDate         = "x-log-date"            // v4 request time, yyyyMMddTHHmmssZ
	HeaderContentSHA256   = "x-log-content-sha256"  // v4 hex SHA-256 of the body
	HeaderSecurityToken   = "x-acs-security-token"  // STS token

	// Response headers.
	HeaderRequestID = "x-log-requestid" // on EVERY response (LoongCollector treats a reply without it as not-SLS)
	HeaderLogTime   = "x-log-time"      // server epoch seconds; agents correct their clock with it

	// GetLogs / GetHistograms / pull response and request headers.
	HeaderCount              = "x-log-count"
	HeaderProgress           = "x-log-progress"
	HeaderProcessedRows      = "x-log-processed-rows"
	HeaderElapsedMillisecond = "x-log-elapsed-millisecond"
	HeaderHasSQL             = "x-log-has-sql"
	HeaderAggQuery           = "x-log-agg-query"
	HeaderWhereQuery         = "x-log-where-query"
	HeaderQueryInfo          = "x-log-query-info"
	HeaderCursor             = "x-log-cursor"
	HeaderLogMetaPrefix      = "x-log-meta-" // user metadata headers: never signed
	HeaderLogPrefix          = "x-log-"
	HeaderAcsPrefix          = "x-acs-"
)

// Header values.
const (
	APIVersion                = "0.6.0"
	SignatureMethodHMACSHA1   = "hmac-sha1"
	SignatureMethodHMACSHA256 = "hmac-sha256" // v1 signed with HMAC-SHA256 (sls20201230 SDKs)
	ContentTypeProtobuf       = "application/x-protobuf"
	ContentTypeJSON           = "application/json"
	ModeBatchGroup            = "batch_group"
)

// MaxRawBodySize is the Log Service limit on an uncompressed PutLogs body
// (10 MB). Servers pass it (or their own limit) to decompression.
const MaxRawBodySize = 10 << 20
