/* Unit tests for the secrets daemon's admission rules and its per-uid rate
 * limiter (src/secrets/peers.c): who gets a slot, the per-uid cap, the
 * reserve for the owner and root, and that the limiter lets at most one line
 * per uid per interval through while counting every event it holds back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/peers.h"

static const uid_t uids[] = { 0, 1000, 1001 };
static const gid_t gids[] = { 500 };
static const struct secrets_admission policy = {
    .allow_uids = uids,
    .n_allow_uids = 3,
    .allow_gids = gids,
    .n_allow_gids = 1,
    .owner_uid = 1000,
    .max_conns = 64,
    .reserved = 4,
    .per_uid = 16,
};

static struct secrets_peer peer(long long uid, long long gid)
{
    return (struct secrets_peer){ uid, gid, 4242 };
}

static void peers_are_allowed_by_uid_or_primary_gid_only(void **state)
{
    (void)state;
    assert_true(secrets_peer_allowed(&policy, &(struct secrets_peer){ 1001, 9, 1 }));
    assert_true(secrets_peer_allowed(&policy, &(struct secrets_peer){ 7777, 500, 1 }));
    assert_false(secrets_peer_allowed(&policy, &(struct secrets_peer){ 7777, 501, 1 }));
    assert_false(secrets_peer_allowed(&policy, &(struct secrets_peer){ -1, 500, 1 }));
    struct secrets_admission none = policy;
    none.n_allow_uids = 0;
    none.n_allow_gids = 0;
    assert_false(secrets_peer_allowed(&none, &(struct secrets_peer){ 0, 0, 1 }));
    assert_int_equal(secrets_admit(&policy, &(struct secrets_peer){ 7777, 501, 1 }, 0, 0),
                     SECRETS_ADMIT_NOT_ALLOWED);
}

static void one_uid_cannot_hold_more_than_its_cap(void **state)
{
    (void)state;
    struct secrets_peer p = peer(1001, 9);
    assert_int_equal(secrets_admit(&policy, &p, 20, 15), SECRETS_ADMIT_OK);
    assert_int_equal(secrets_admit(&policy, &p, 20, 16), SECRETS_ADMIT_UID_FULL);
    /* the cap holds for the owner and root too */
    assert_int_equal(secrets_admit(&policy, &(struct secrets_peer){ 1000, 9, 1 }, 20, 16),
                     SECRETS_ADMIT_UID_FULL);
    assert_int_equal(secrets_admit(&policy, &(struct secrets_peer){ 0, 0, 1 }, 20, 16),
                     SECRETS_ADMIT_UID_FULL);
}

static void the_last_slots_are_kept_for_the_owner_and_root(void **state)
{
    (void)state;
    struct secrets_peer other = peer(7777, 500), owner = peer(1000, 9), root = peer(0, 0);
    assert_int_equal(secrets_admit(&policy, &other, 59, 0), SECRETS_ADMIT_OK);
    assert_int_equal(secrets_admit(&policy, &other, 60, 0), SECRETS_ADMIT_FULL);
    assert_int_equal(secrets_admit(&policy, &owner, 60, 0), SECRETS_ADMIT_OK);
    assert_int_equal(secrets_admit(&policy, &root, 63, 0), SECRETS_ADMIT_OK);
    assert_int_equal(secrets_admit(&policy, &root, 64, 0), SECRETS_ADMIT_FULL);
    /* root that is not allowed gets nothing from the reserve */
    struct secrets_admission no_root = policy;
    no_root.allow_uids = uids + 1;
    no_root.n_allow_uids = 2;
    assert_int_equal(secrets_admit(&no_root, &root, 0, 0), SECRETS_ADMIT_NOT_ALLOWED);
}

static void the_limiter_lets_one_line_per_uid_per_interval_through(void **state)
{
    (void)state;
    struct secrets_ratelimit r = { .interval_ms = 1000 };
    struct secrets_rl_line l;
    struct secrets_peer a = peer(65534, 65534), b = peer(65533, 65534);
    assert_true(secrets_ratelimit_hit(&r, &a, 10000, &l));
    assert_int_equal(l.suppressed, 0);
    assert_int_equal(l.peer.uid, 65534);
    for (int i = 1; i <= 5; i++)
        assert_false(secrets_ratelimit_hit(&r, &a, 10000 + i * 100, &l));
    /* another uid has its own allowance */
    assert_true(secrets_ratelimit_hit(&r, &b, 10200, &l));
    assert_int_equal(secrets_ratelimit_next(&r), 11000);
    assert_false(secrets_ratelimit_due(&r, 10999, false, &l));
    /* the next event after the interval carries the held count */
    assert_true(secrets_ratelimit_hit(&r, &a, 11000, &l));
    assert_int_equal(l.suppressed, 5);
    assert_int_equal(secrets_ratelimit_next(&r), INT64_MAX);
    /* held events with no event after them go out as a summary */
    assert_false(secrets_ratelimit_hit(&r, &a, 11500, &l));
    assert_false(secrets_ratelimit_hit(&r, &a, 11600, &(struct secrets_rl_line){ 0 }));
    assert_false(secrets_ratelimit_due(&r, 11999, false, &l));
    assert_true(secrets_ratelimit_due(&r, 12000, false, &l));
    assert_int_equal(l.suppressed, 1); /* the line records one, and stands for one more */
    assert_false(secrets_ratelimit_due(&r, 12000, false, &l));
    /* at shutdown, everything held goes out whatever the time */
    assert_false(secrets_ratelimit_hit(&r, &a, 12100, &l));
    assert_true(secrets_ratelimit_due(&r, 12100, true, &l));
    assert_int_equal(l.suppressed, 0);
}

/* Counts a line the limiter let through, checking that a loud uid (which
 * has a key of its own) never gets two within an interval. */
static void line_out(const struct secrets_rl_line *l, int64_t now, int64_t *last_line,
                     long long *lines, long long *accounted)
{
    (*lines)++;
    *accounted += 1 + l->suppressed;
    long long u = l->peer.uid - 60000;
    if (u >= 0 && u < 3) {
        assert_true(now - last_line[u] >= 1000);
        last_line[u] = now;
    }
}

/* Feeds a pseudo-random stream of events from more uids than the limiter has
 * keys (three of them loud) and checks that every event is accounted for. */
static void the_limiter_loses_no_event_under_a_flood(void **state)
{
    (void)state;
    struct secrets_ratelimit r = { .interval_ms = 1000 };
    enum { UIDS = SECRETS_RATELIMIT_KEYS + 20 };
    long long given = 0, accounted = 0, lines = 0;
    int64_t last_line[3] = { -1000000, -1000000, -1000000 };
    unsigned seed = 12345;
    int64_t now = 0;
    struct secrets_rl_line l;
    for (int i = 0; i < 200000; i++) {
        seed = seed * 1103515245u + 12345u;
        now += (seed >> 16) % 3;
        /* the loud uids come first, so they hold keys of their own */
        int u = i < 3 ? i : (int)((seed >> 8) % ((seed & 1) ? 3 : UIDS));
        struct secrets_peer p = peer(60000 + u, 1);
        given++;
        if (secrets_ratelimit_hit(&r, &p, now, &l))
            line_out(&l, now, last_line, &lines, &accounted);
        while (secrets_ratelimit_due(&r, now, false, &l))
            line_out(&l, now, last_line, &lines, &accounted);
    }
    while (secrets_ratelimit_due(&r, now + 1000, true, &l))
        line_out(&l, now + 1000, last_line, &lines, &accounted);
    assert_int_equal(accounted, given);
    /* at most one line per key (64 and the shared one) per interval */
    assert_true(lines <= (SECRETS_RATELIMIT_KEYS + 1) * (now / 1000 + 2));
    assert_true(lines < given / 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(peers_are_allowed_by_uid_or_primary_gid_only),
        cmocka_unit_test(one_uid_cannot_hold_more_than_its_cap),
        cmocka_unit_test(the_last_slots_are_kept_for_the_owner_and_root),
        cmocka_unit_test(the_limiter_lets_one_line_per_uid_per_interval_through),
        cmocka_unit_test(the_limiter_loses_no_event_under_a_flood),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
