/* Unit tests for the secrets wire protocol (src/secrets/proto.c), the TTL
 * syntax, the exit-code map of the client, and the in-memory lease table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/client.h"
#include "secrets/lease.h"
#include "secrets/proto.h"

static int parse(const char *line, struct secrets_request *r)
{
    struct sb_err err = { 0 };
    return secrets_request_parse(line, strlen(line), r, &err);
}

static void ttl_accepts_units_and_bare_seconds(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t s;
    } ok[] = { { "30s", 30 }, { "20m", 1200 },   { "1h", 3600 },  { "24h", 86400 },
               { "90", 90 },  { "1h30m", 5400 }, { "1d", 86400 }, { "25h", 90000 } };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t s = -1;
        assert_int_equal(secrets_ttl_parse(ok[i].text, &s), 0);
        assert_int_equal(s, ok[i].s);
    }
    static const char *bad[] = { "", "0", "0s", "-5", "500ms", "1.5s", "abc", "1x", "h", NULL };
    for (size_t i = 0; bad[i]; i++) {
        int64_t s = -1;
        assert_int_equal(secrets_ttl_parse(bad[i], &s), SB_EINVAL);
    }
    assert_int_equal(secrets_ttl_parse(NULL, &(int64_t){ 0 }), SB_EINVAL);
}

static void names_and_client_ids_have_a_safe_charset(void **state)
{
    (void)state;
    char n128[129], n129[130];
    memset(n128, 'a', 128), n128[128] = '\0';
    memset(n129, 'a', 129), n129[129] = '\0';
    assert_true(secrets_name_valid("github_token"));
    assert_true(secrets_name_valid("a.b-c_D9"));
    assert_true(secrets_name_valid(n128));
    assert_false(secrets_name_valid(n129));
    assert_false(secrets_name_valid(""));
    assert_false(secrets_name_valid("a b"));
    assert_false(secrets_name_valid("a/b"));
    assert_false(secrets_name_valid("a\"b"));
    assert_false(secrets_name_valid("caf\xc3\xa9"));
    assert_true(secrets_client_id_valid("talon:worker@host/1"));
    assert_false(secrets_client_id_valid("two words"));
}

static void a_lease_request_parses(void **state)
{
    (void)state;
    struct secrets_request r;
    assert_int_equal(
        parse("{\"v\":1,\"op\":\"lease\",\"name\":\"gh\",\"ttl\":30,\"client_id\":\"t1\"}", &r), 0);
    assert_int_equal(r.op, SECRETS_OP_LEASE);
    assert_string_equal(r.name, "gh");
    assert_string_equal(r.client_id, "t1");
    assert_true(r.has_ttl);
    assert_int_equal(r.ttl, 30);
    assert_null(r.value);
    secrets_request_clear(&r);
    /* whitespace around everything, unknown members ignored, no "v" */
    assert_int_equal(parse(" { \"op\" : \"list\" , \"future\" : {\"x\":[1]} } ", &r), SB_EPROTO);
    assert_int_equal(parse(" { \"op\" : \"list\" , \"future\" : {\"x\":1}, \"n\":null } ", &r), 0);
    assert_int_equal(r.op, SECRETS_OP_LIST);
    secrets_request_clear(&r);
}

static void malformed_requests_are_protocol_errors(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "   ",
        "null",
        "[]",
        "{",
        "{\"op\":\"list\"",
        "{\"op\":\"list\"}x",
        "{\"op\":\"list\",}",
        "{op:\"list\"}",
        "{\"name\":\"a\"}",                                 /* no op */
        "{\"op\":\"explode\"}",                             /* unknown op */
        "{\"op\":1}",                                       /* op not a string */
        "{\"op\":\"lease\"}",                               /* lease needs name */
        "{\"op\":\"add\",\"name\":\"a\"}",                  /* add needs value */
        "{\"op\":\"revoke\"}",                              /* revoke needs lease_id */
        "{\"op\":\"lease\",\"name\":\"a\",\"ttl\":\"1h\"}", /* ttl must be a number */
        "{\"op\":\"lease\",\"name\":\"a\",\"ttl\":1.5}",    /* ... an integer */
        "{\"op\":\"lease\",\"name\":\"a\",\"ttl\":1e3}",    /* ... without exponent */
        "{\"op\":\"lease\",\"name\":\"a\",\"ttl\":99999999999999999999}",
        "{\"op\":\"lease\",\"name\":\"a\",\"name\":\"b\"}", /* duplicate */
        "{\"op\":\"lease\",\"name\":[\"a\"]}",              /* arrays */
        "{\"op\":\"list\",\"a\":{\"b\":{\"c\":1}}}",        /* three levels */
        "{\"op\":\"list\",\"a\":\"\\x\"}",                  /* bad escape */
        "{\"op\":\"list\",\"a\":\"\\u12\"}",                /* short \u */
        "{\"op\":\"list\",\"a\":\"tab\there\"}",            /* raw control char */
        "{\"op\":\"list\",\"a\":\"\xff\"}",                 /* not UTF-8 */
        "{\"op\":\"list\",\"a\":\"\xc0\xaf\"}",             /* overlong */
        "{\"op\":\"list\",\"a\":01}",                       /* leading zero */
        "{\"op\":\"list\",\"a\":-}",
        "{\"op\":\"list\",\"a\":tru}",
        "{\"v\":2,\"op\":\"list\"}", /* unknown version */
        NULL,
    };
    for (size_t i = 0; bad[i]; i++) {
        struct secrets_request r;
        struct sb_err err = { 0 };
        int rc = secrets_request_parse(bad[i], strlen(bad[i]), &r, &err);
        if (rc != SB_EPROTO)
            fail_msg("case %zu (%s): got %d (%s)", i, bad[i], rc, err.msg);
        assert_true(err.msg[0] != '\0');
        assert_null(r.value);
    }
    /* an embedded NUL byte in the line */
    struct secrets_request r;
    assert_int_equal(secrets_request_parse("{\"op\":\"list\"}\0x", 15, &r, NULL), SB_EPROTO);
}

static void refused_field_values_keep_the_op_for_the_audit_trail(void **state)
{
    (void)state;
    struct secrets_request r;
    struct sb_err err = { 0 };
    char line[512];
    char longname[200];
    memset(longname, 'n', 199), longname[199] = '\0';
    snprintf(line, sizeof line, "{\"op\":\"lease\",\"name\":\"%s\"}", longname);
    assert_int_equal(secrets_request_parse(line, strlen(line), &r, &err), SB_EINVAL);
    assert_int_equal(r.op, SECRETS_OP_LEASE);
    assert_int_equal(strlen(r.name), SECRETS_NAME_MAX); /* truncated copy */
    assert_non_null(strstr(err.msg, "longer than 128"));

    assert_int_equal(parse("{\"op\":\"lease\",\"name\":\"a b\"}", &r), SB_EINVAL);
    assert_string_equal(r.name, "a b");
    assert_int_equal(parse("{\"op\":\"lease\",\"name\":\"a\",\"ttl\":0}", &r), SB_EINVAL);
    assert_int_equal(parse("{\"op\":\"lease\",\"name\":\"a\",\"ttl\":-3}", &r), SB_EINVAL);
    assert_int_equal(parse("{\"op\":\"add\",\"name\":\"a\",\"value\":\"\"}", &r), SB_EINVAL);
    assert_null(r.value);
    assert_int_equal(parse("{\"op\":\"add\",\"name\":\"a\",\"value\":\"x\\u0000y\"}", &r),
                     SB_EINVAL);
    assert_null(r.value);
    assert_int_equal(parse("{\"op\":\"add\",\"name\":\"a\",\"value\":\"\\ud800\"}", &r), SB_EINVAL);
    assert_int_equal(parse("{\"op\":\"add\",\"name\":\"a\",\"value\":\"\\udc00\\ud800\"}", &r),
                     SB_EINVAL);
    assert_int_equal(parse("{\"op\":\"revoke\",\"lease_id\":\"nope\"}", &r), SB_EINVAL);
    assert_int_equal(parse("{\"op\":\"audit\",\"tail\":0}", &r), SB_EINVAL);
    assert_int_equal(parse("{\"op\":\"audit\",\"tail\":10001}", &r), SB_EINVAL);
    assert_int_equal(parse("{\"op\":\"list\",\"client_id\":\"has space\"}", &r), SB_EINVAL);
    /* a TTL above the maximum is well-formed: the daemon refuses and audits it */
    assert_int_equal(parse("{\"op\":\"lease\",\"name\":\"a\",\"ttl\":90000}", &r), 0);
    assert_int_equal(r.ttl, 90000);
    secrets_request_clear(&r);
}

static void values_at_and_over_the_size_limit(void **state)
{
    (void)state;
    size_t n = SECRETS_VALUE_MAX + 1;
    char *line = malloc(n + 64);
    for (int over = 0; over <= 1; over++) {
        size_t vlen = SECRETS_VALUE_MAX + (size_t)over;
        int k = snprintf(line, 64, "{\"op\":\"add\",\"name\":\"big\",\"value\":\"");
        memset(line + k, 'v', vlen);
        strcpy(line + k + vlen, "\"}");
        struct secrets_request r;
        struct sb_err err = { 0 };
        int rc = secrets_request_parse(line, strlen(line), &r, &err);
        if (!over) {
            assert_int_equal(rc, 0);
            assert_int_equal(r.value_len, SECRETS_VALUE_MAX);
        } else {
            assert_int_equal(rc, SB_ETOOBIG);
            assert_null(r.value);
        }
        secrets_request_clear(&r);
    }
    free(line);
}

static void encode_then_parse_round_trips_any_value(void **state)
{
    (void)state;
    const char value[] = "q\"b\\s/\b\f\n\r\t\x01\x1f caf\xc3\xa9 \xf0\x9f\x94\x91 end";
    struct secrets_request in = { .op = SECRETS_OP_ADD };
    strcpy(in.name, "k.1");
    strcpy(in.client_id, "talon");
    in.value = secrets_guarded_dup(value, sizeof value - 1);
    in.value_len = sizeof value - 1;
    struct secrets_gbuf b = SECRETS_GBUF_INIT(SECRETS_REQUEST_MAX);
    assert_int_equal(secrets_request_encode(&in, &b), 0);
    assert_true(b.len > 0 && b.data[b.len - 1] == '\n');
    assert_null(memchr(b.data, '\n', b.len - 1)); /* one line */
    struct secrets_request out;
    struct sb_err err = { 0 };
    assert_int_equal(secrets_request_parse(b.data, b.len - 1, &out, &err), 0);
    assert_int_equal(out.op, SECRETS_OP_ADD);
    assert_string_equal(out.name, "k.1");
    assert_string_equal(out.client_id, "talon");
    assert_int_equal(out.value_len, in.value_len);
    assert_memory_equal(out.value, value, in.value_len);
    secrets_request_clear(&out);
    secrets_request_clear(&in);
    secrets_gbuf_free(&b);

    /* a surrogate pair escape decodes to the 4-byte UTF-8 form */
    struct secrets_request r;
    assert_int_equal(parse("{\"op\":\"add\",\"name\":\"e\",\"value\":\"\\ud83d\\udd11\"}", &r), 0);
    assert_int_equal(r.value_len, 4);
    assert_memory_equal(r.value, "\xf0\x9f\x94\x91", 4);
    secrets_request_clear(&r);
}

struct seen {
    char keys[8][40];
    int n;
};
static int collect(void *ctx, const char *key, enum secrets_jtype t, const char *raw, size_t rawlen)
{
    (void)t, (void)raw, (void)rawlen;
    struct seen *s = ctx;
    if (s->n < 8)
        snprintf(s->keys[s->n++], 40, "%s", key);
    return 0;
}

static void the_scanner_reports_nested_members_with_dotted_keys(void **state)
{
    (void)state;
    const char *a =
        "{\"ok\":false,\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"no \\\"x\\\"\"}}";
    struct seen s = { 0 };
    assert_int_equal(secrets_json_scan(a, strlen(a), collect, &s, NULL), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.keys[0], "ok");
    assert_string_equal(s.keys[1], "error.code");
    assert_string_equal(s.keys[2], "error.message");
    /* unknown members are reported too (the caller ignores them) */
    const char *b = "{\"future\":{\"x\":1},\"ok\":true}";
    memset(&s, 0, sizeof s);
    assert_int_equal(secrets_json_scan(b, strlen(b), collect, &s, NULL), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.keys[0], "future.x");
    assert_string_equal(s.keys[1], "ok");
}

static void member_names_are_held_to_the_envelope(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    char line[400];
    /* 64 bytes is the longest member name, nested or not */
    snprintf(line, sizeof line, "{\"%064d\":{\"%064d\":1},\"op\":\"list\"}", 0, 0);
    struct secrets_request r;
    assert_int_equal(secrets_request_parse(line, strlen(line), &r, &err), 0);
    secrets_request_clear(&r);
    snprintf(line, sizeof line, "{\"%065d\":1,\"op\":\"list\"}", 0);
    assert_int_equal(secrets_request_parse(line, strlen(line), &r, &err), SB_EPROTO);
    assert_non_null(strstr(err.msg, "member name is longer than 64 bytes"));
    snprintf(line, sizeof line, "{\"a\":{\"%065d\":1},\"op\":\"list\"}", 0);
    assert_int_equal(secrets_request_parse(line, strlen(line), &r, &err), SB_EPROTO);
    /* a member name with \u0000 is refused, not cut short into "name" */
    const char *nul = "{\"op\":\"lease\",\"name\\u0000x\":\"k\",\"name\":\"j\"}";
    assert_int_equal(secrets_request_parse(nul, strlen(nul), &r, &err), SB_EPROTO);
    assert_non_null(strstr(err.msg, "member name holds \\u0000"));
    nul = "{\"op\":\"status\",\"x\\u0000\":1}";
    assert_int_equal(secrets_request_parse(nul, strlen(nul), &r, &err), SB_EPROTO);
    /* the answer scanner applies the same limits */
    assert_int_equal(secrets_json_scan("{\"ok\\u0000\":true}", 17, NULL, NULL, &err), SB_EPROTO);
}

static void names_and_ids_holding_nul_are_refused_whole(void **state)
{
    (void)state;
    struct secrets_request r;
    struct sb_err err = { 0 };
    const char *line = "{\"op\":\"lease\",\"name\":\"k\\u0000x\"}";
    assert_int_equal(secrets_request_parse(line, strlen(line), &r, &err), SB_EINVAL);
    assert_int_equal(r.op, SECRETS_OP_LEASE);
    assert_string_equal(r.name, ""); /* not "k": nothing shortened is kept */
    assert_non_null(strstr(err.msg, "name holds \\u0000"));
    line = "{\"op\":\"lease\",\"name\":\"k\",\"client_id\":\"\\u0000\"}";
    assert_int_equal(secrets_request_parse(line, strlen(line), &r, &err), SB_EINVAL);
    assert_non_null(strstr(err.msg, "client_id holds \\u0000"));
    line = "{\"op\":\"revoke\",\"lease_id\":\"01ARZ3NDEKTSV4RRFFQ69G5FAV\\u0000\"}";
    assert_int_equal(secrets_request_parse(line, strlen(line), &r, &err), SB_EINVAL);
    assert_string_equal(r.lease_id, "");
    /* an escaped backslash before "u0000" is no NUL (just a bad name) */
    line = "{\"op\":\"lease\",\"name\":\"k\\\\u0000\"}";
    assert_int_equal(secrets_request_parse(line, strlen(line), &r, &err), SB_EINVAL);
    assert_non_null(strstr(err.msg, "invalid secret name"));
    assert_false(secrets_json_raw_has_nul("k\\\\u0000", 8));
    assert_true(secrets_json_raw_has_nul("k\\\\\\u0000", 9));
    secrets_request_clear(&r);
}

static void strings_other_than_the_value_are_bounded(void **state)
{
    (void)state;
    char *line = malloc(SECRETS_STRING_MAX + 64);
    for (int over = 0; over <= 1; over++) {
        int k = snprintf(line, 64, "{\"op\":\"status\",\"note\":\"");
        memset(line + k, 'n', SECRETS_STRING_MAX + (size_t)over);
        strcpy(line + k + SECRETS_STRING_MAX + over, "\"}");
        struct secrets_request r;
        struct sb_err err = { 0 };
        int rc = secrets_request_parse(line, strlen(line), &r, &err);
        assert_int_equal(rc, over ? SB_ETOOBIG : 0);
        if (over)
            assert_non_null(strstr(err.msg, "'note' is longer than 1024 bytes"));
        secrets_request_clear(&r);
    }
    free(line);
}

static void unescape_respects_its_capacity(void **state)
{
    (void)state;
    char out[4];
    size_t n = 99;
    assert_int_equal(secrets_json_unescape("abc", 3, out, sizeof out, &n), 0);
    assert_string_equal(out, "abc");
    assert_int_equal(secrets_json_unescape("abcd", 4, out, sizeof out, &n), SB_ETOOBIG);
    assert_int_equal(strlen(out), 3);
    assert_int_equal(secrets_json_unescape("\\u00e9\\u00e9", 12, out, sizeof out, &n), SB_ETOOBIG);
    assert_int_equal(secrets_json_unescape("\\n\\t", 4, out, sizeof out, &n), 0);
    assert_string_equal(out, "\n\t");
}

static void wire_codes_and_exit_codes_match_the_documentation(void **state)
{
    (void)state;
    assert_string_equal(secrets_wire_code(SB_ENOTFOUND), "NOT_FOUND");
    assert_int_equal(secrets_wire_decode("NOT_FOUND"), SB_ENOTFOUND);
    assert_int_equal(secrets_wire_decode("UNAUTHORIZED"), SB_EAUTH);
    assert_int_equal(secrets_wire_decode("SOMETHING_NEW"), SB_EPROTO);
    assert_int_equal(secrets_exit_code(0), 0);
    assert_int_equal(secrets_exit_code(SB_ENOTFOUND), 1);
    assert_int_equal(secrets_exit_code(SB_EAUTH), 1);
    assert_int_equal(secrets_exit_code(SB_EINVAL), 64);
    assert_int_equal(secrets_exit_code(SB_ETOOBIG), 64);
    assert_int_equal(secrets_exit_code(SB_ETIMEOUT), 65);
    assert_int_equal(secrets_exit_code(SB_EIO), 66);
    assert_int_equal(secrets_exit_code(SB_EPROTO), 67);
    assert_int_equal(secrets_exit_code(SB_EUNAVAIL), 69);
    assert_int_equal(secrets_exit_code(SB_EINTERNAL), 70);
    assert_int_equal(secrets_exit_code(SB_ENOMEM), 70);
}

static void socket_path_prefers_the_flag(void **state)
{
    (void)state;
    char out[108];
    assert_int_equal(secrets_socket_path("/tmp/x.sock", out, sizeof out, NULL), 0);
    assert_string_equal(out, "/tmp/x.sock");
    char longp[200];
    memset(longp, 'a', sizeof longp - 1), longp[0] = '/', longp[199] = '\0';
    assert_int_equal(secrets_socket_path(longp, out, sizeof out, NULL), SB_EINVAL);
}

static void leases_expire_and_revoke(void **state)
{
    (void)state;
    struct secrets_leases t = { 0 };
    const struct secrets_lease_rec *a, *b;
    int64_t t0 = 1800000000000;
    assert_int_equal(secrets_leases_add(&t, "gh", "talon", 2, t0, 0, 1, &a), 0);
    char ida[SB_ULID_SIZE];
    strcpy(ida, a->id);
    assert_int_equal(secrets_leases_add(&t, "db", NULL, 3600, t0, 0, 1, &b), 0);
    char idb[SB_ULID_SIZE];
    strcpy(idb, b->id);
    assert_true(sb_ulid_valid(ida));
    assert_string_not_equal(ida, idb);
    assert_int_equal(secrets_leases_count(&t, "gh", t0 + 1999), 1);
    assert_int_equal(secrets_leases_count(&t, "gh", t0 + 2000), 0); /* expired at expiry */
    /* an expired lease cannot be revoked: not found */
    assert_int_equal(secrets_leases_revoke(&t, ida, t0 + 2000), SB_ENOTFOUND);
    assert_int_equal(secrets_leases_revoke(&t, "01JQDAE4RQF8MBCR55T5AK4KXS", t0), SB_ENOTFOUND);
    assert_int_equal(secrets_leases_revoke(&t, idb, t0 + 2000), 0);
    assert_int_equal(secrets_leases_revoke(&t, idb, t0 + 2000), SB_ENOTFOUND);
    for (int i = 0; i < 5; i++)
        assert_int_equal(secrets_leases_add(&t, i % 2 ? "x" : "y", "c", 60, t0, 0, 1, &a), 0);
    assert_int_equal(secrets_leases_revoke_name(&t, "x", t0), 2);
    assert_int_equal(secrets_leases_revoke_all(&t, t0), 3);
    assert_int_equal(t.n, 0);
    assert_int_equal(secrets_leases_add(&t, "z", "c", 1, t0, 0, 1, &a), 0);
    assert_int_equal(secrets_leases_expire(&t, t0 + 1000), 1);
    secrets_leases_free(&t);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ttl_accepts_units_and_bare_seconds),
        cmocka_unit_test(names_and_client_ids_have_a_safe_charset),
        cmocka_unit_test(a_lease_request_parses),
        cmocka_unit_test(malformed_requests_are_protocol_errors),
        cmocka_unit_test(refused_field_values_keep_the_op_for_the_audit_trail),
        cmocka_unit_test(values_at_and_over_the_size_limit),
        cmocka_unit_test(encode_then_parse_round_trips_any_value),
        cmocka_unit_test(the_scanner_reports_nested_members_with_dotted_keys),
        cmocka_unit_test(member_names_are_held_to_the_envelope),
        cmocka_unit_test(names_and_ids_holding_nul_are_refused_whole),
        cmocka_unit_test(strings_other_than_the_value_are_bounded),
        cmocka_unit_test(unescape_respects_its_capacity),
        cmocka_unit_test(wire_codes_and_exit_codes_match_the_documentation),
        cmocka_unit_test(socket_path_prefers_the_flag),
        cmocka_unit_test(leases_expire_and_revoke),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
