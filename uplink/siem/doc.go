// Package siem owns what Weir's records look like to a SIEM: four
// encoders behind one Encoder interface (CEF, LEEF 2.0, RFC 5424 with
// RFC 5425 octet-counted framing, and JSON in Elastic Common Schema
// names), the strict parsers that read each format back (tests, fuzzing,
// interop checks), and the mapping from a record's kind and severity to
// each format's fields.
//
// Its sub-packages deliver encoded records: uplink/siem/output runs an
// output off a spool (its own cursor, batching, retries, the mark it has
// delivered), uplink/siem/syslogtls, uplink/siem/hec and
// uplink/siem/elastic are the targets.
//
// # Classes
//
// A record's class refines its event.Kind by its source (ClassOf):
//
//	class       kind       how it is told apart
//	modbus      reading    source "modbus:<device>"
//	line        reading    any other reading (inputs.lines)
//	file        log        a log record without a syslog facility field
//	syslog      log        a log record with a "facility" field
//	audit       audit
//	integrity   integrity
//	telemetry   telemetry
//	alert       alert
//
// # The mapping
//
//	class      CEF SignatureID / Name          LEEF EventID  cat        ECS event.kind  event.category  event.type  RFC 5424 MSGID
//	modbus     weir:modbus / Modbus reading     modbus        reading    metric          [host]          [info]      modbus
//	line       weir:line / Line sensor reading  line          reading    metric          [host]          [info]      line
//	file       weir:file / Log file line        file          log        event           [host]          [info]      file
//	syslog     weir:syslog / Syslog message     syslog        log        event           [host]          [info]      syslog
//	audit      weir:audit / Linux audit event   audit         audit      event           [host]          [info]      audit
//	integrity  weir:integrity / File changed    integrity     integrity  event           [file]          [change]    integrity
//	telemetry  weir:telemetry / Weir telemetry  telemetry     telemetry  metric          [host]          [info]      telemetry
//	alert      weir:alert / Weir alert          alert         alert      alert           [host]          [info]      alert
//
// Severity (the record's syslog severity, 0 emergency .. 7 debug):
//
//	severity  CEF (0-10)  LEEF sev (1-10)  RFC 5424 PRI           ECS event.severity / log.level
//	emerg     10          10               facility*8 + 0         0 / emerg
//	alert     9           9                facility*8 + 1         1 / alert
//	crit      8           8                facility*8 + 2         2 / crit
//	err       7           7                facility*8 + 3         3 / err
//	warning   5           5                facility*8 + 4         4 / warning
//	notice    3           3                facility*8 + 5         5 / notice
//	info      1           2                facility*8 + 6         6 / info
//	debug     0           1                facility*8 + 7         7 / debug
//
// The facility is the record's own for syslog records (its "facility"
// field), the configured one (local0 by default) for every other.
//
// Every format carries, besides its standard keys: the gateway id and the
// gateway's sequence (the dedupe id "gateway:sequence"), the source, the
// time quality (clock source, state, error bound in ns), the checksum
// verdict, and the record's typed fields.
//
//	what            CEF                      LEEF              RFC 5424                   ECS
//	time            rt (ms since epoch)      devTime+devTimeFormat  TIMESTAMP (us, UTC)   @timestamp (ns, UTC)
//	host            dvchost                  identHostName     HOSTNAME                   host.name
//	message         msg                      msg               MSG (BOM + UTF-8)          message
//	sender address  src (IP of a syslog peer) src              -                          source.ip
//	category        cat                      cat               MSGID                      event.category
//	gateway         deviceExternalId         weirGateway       weir@PEN gw                observer.name
//	dedupe id       externalId               weirId            weir@PEN id                event.id
//	sequence        cn1 (cn1Label=weirSeq)   weirSeq           weir@PEN seq               event.sequence
//	error bound     cn2 (weirTimeErrorNs)    weirTimeErrorNs   weir@PEN tqErr             weir.time_quality.error_bound_ns
//	source          cs1 (weirSource)         weirSource        weir@PEN src               event.provider
//	time quality    cs2 (weirTimeQuality)    weirTimeQuality   weir@PEN tqSrc, tqState    weir.time_quality
//	checksum        cs3 (weirChecksum)       weirChecksum      weir@PEN cs                weir.checksum
//	fields          cs4 (weirFields, JSON)   weirFields (JSON) weirFields@PEN, one param each  weir.fields
//	exact message   cs5 (weirMsgBase64)      weirMsgBase64     (MSG-ANY: the bytes as they are) weir.message_base64
//	file path       filePath                 filePath          weirFields path            log.file.path
//
// # Escaping
//
// CEF: in the header '\' and '|' are escaped with '\'; in extension
// values '\', '=' and line ends (\n, \r) are. LEEF has no escapes in
// attribute values: its delimiter and line ends in a value become a
// space, and '|' and '\' in its header are escaped as CEF's. RFC 5424
// escapes '"', '\' and ']' in SD values; HOSTNAME, APP-NAME, PROCID and
// MSGID are printable US-ASCII with anything else replaced by '_'. JSON
// escapes per RFC 8259.
//
// Every text format must be UTF-8 except RFC 5424's MSG: a message that
// is not valid UTF-8, or holds control characters other than tab and
// line ends, is written with each offending byte as U+FFFD and, beside
// it, whole in base64 (CEF cs5, LEEF weirMsgBase64, ECS
// weir.message_base64), so a SOC can always recover exactly what the
// device wrote. RFC 5424 sends such a message as MSG-ANY, without the
// BOM, byte for byte.
//
// docs/ARCHITECTURE.md: "The life of one record", where outputs branch.
package siem
