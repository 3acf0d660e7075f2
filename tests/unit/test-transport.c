/* Unit tests of daemon/transport/: the org.rmabroker.Broker1 object (bus-object.c) as a
 * client sees it, one broker.sock connection (peer.c) and the listener (socket-server.c).
 *
 * Everything runs on one sd_event in this process: the broker's side and the sd-bus
 * clients attached to the same loop, pumped until the answer is there. A connection is
 * either a real one to broker.sock in a temporary directory (the credentials are then
 * the kernel's, of this process), or a socketpair handed to peer_new() with the
 * credentials a test chooses, as socket-server does with what it read at accept. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cleanup.h"
#include "lease.h"
#include "peer.h"
#include "process-identity.h"
#include "recycler.h"
#include "rma-names.h"
#include "socket-server.h"
#include "test-broker-fixture.h"

#define UUID_A "11111111-2222-3333-4444-555555555555"
#define UUID_B "22222222-2222-3333-4444-555555555555"
#define UUID_C "33333333-2222-3333-4444-555555555555"
#define UUID_D "44444444-2222-3333-4444-555555555555"
#define UUID_E "55555555-2222-3333-4444-555555555555"
#define NOBODY 65534
#define QEMU_UID 4243   /* the fixture's QemuUsers */

/* The error names as the interface documents them (docs/org.rmabroker.Broker1.xml), not
 * as rma-names.h spells them: clients match these strings. */
#define ERROR_PREFIX "org.rmabroker.Broker1.Error."

/* A client bus is closed, never flushed: its peer may be gone already. */
typedef sd_bus Client;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Client, sd_bus_close_unref)

typedef struct TransportFixture {
        Fixture base;
        sd_event *event;
        Recycler *recycler;
        Leases *leases;
        BusService service;
        GHashTable *peers;        /* the peers of socketpair connections, freed when gone */
        unsigned next_peer_id;
        unsigned n_gone;
        SocketServer *server;
} TransportFixture;

static int reload_policy(GPtrArray *errors, void *userdata) {
        return broker_reload_policy(userdata, errors);
}

static void peer_destroy(gpointer p) {
        peer_free(p);
}

static int set_draining(const char *reason, void *userdata) {
        broker_set_draining(userdata, reason);
        return 0;
}

static void transport_set_up(TransportFixture *f, gconstpointer data) {
        BrokerConfig *config;

        fixture_set_up(&f->base, data);
        config = f->base.broker->config;
        /* broker.sock in the test's own directory (the backend was opened already). */
        g_free(config->runtime_dir);
        config->runtime_dir = g_strdup(f->base.dir);
        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
        g_assert_cmpint(recycler_new(f->event, f->base.broker->pool, &f->recycler), ==, 0);
        g_assert_cmpint(leases_new(f->event, f->base.broker, f->recycler, &f->leases), ==, 0);
        f->service = (BusService) { .broker = f->base.broker, .leases = f->leases, .recycler = f->recycler,
                                    .reload = reload_policy, .reload_userdata = f->base.broker,
                                    .set_draining = set_draining, .set_draining_userdata = f->base.broker };
        f->peers = g_hash_table_new_full(g_direct_hash, g_direct_equal, peer_destroy, NULL);
}

static void transport_tear_down(TransportFixture *f, gconstpointer data) {
        f->server = socket_server_free(f->server);
        g_clear_pointer(&f->peers, g_hash_table_destroy);
        f->leases = leases_free(f->leases);
        f->recycler = recycler_free(f->recycler);
        bus_service_done(&f->service);
        f->event = sd_event_unref(f->event);
        fixture_tear_down(&f->base, data);
}

static void pump_for(TransportFixture *f, uint64_t usec) {
        uint64_t until = g_get_monotonic_time() + usec;

        while ((uint64_t) g_get_monotonic_time() < until)
                g_assert_cmpint(sd_event_run(f->event, 10 * 1000), >=, 0);
}

/* The fds this process has open: the broker's and the clients' alike. */
static unsigned open_fds(void) {
        g_autoptr(GDir) d = g_dir_open("/proc/self/fd", 0, NULL);
        unsigned n = 0;

        g_assert_nonnull(d);
        while (g_dir_read_name(d))
                n++;
        return n - 1;   /* the directory itself */
}

static void on_peer_gone(Peer *p, void *userdata) {
        TransportFixture *f = userdata;

        f->n_gone++;
        g_hash_table_remove(f->peers, p);
}

/* A connection served by peer_new() as socket-server serves an accepted one, but with the
 * credentials given here: the client end, for an sd-bus client or raw bytes. */
static int connect_peer(TransportFixture *f, uid_t uid, bool relay) {
        const BrokerConfig *config = f->base.broker->config;
        PeerHost host = { .event = f->event, .config = config, .service = &f->service, .on_gone = on_peer_gone,
                          .userdata = f };
        struct ucred cred = { .pid = getpid(), .uid = uid, .gid = getgid() };
        PeerClass class = uid == 0 ? PEER_ROOT : broker_config_uid_may_claim(config, uid) ? PEER_QEMU : PEER_OTHER;
        Peer *p = NULL;
        int pair[2];

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair), ==, 0);
        g_assert_cmpint(peer_new(&host, ++f->next_peer_id, pair[0], &cred, class, relay, &p), ==, 0);
        g_hash_table_add(f->peers, p);
        return pair[1];
}

/* An sd-bus client on fd (taken), as rma-client talks to broker.sock: no bus daemon, fds
 * accepted, on the test's loop. */
static Client *client_on_fd(TransportFixture *f, int fd) {
        Client *bus = NULL;

        g_assert_cmpint(sd_bus_new(&bus), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(bus, fd, fd), >=, 0);
        g_assert_cmpint(sd_bus_negotiate_fds(bus, 1), >=, 0);
        g_assert_cmpint(sd_bus_start(bus), >=, 0);
        g_assert_cmpint(sd_bus_attach_event(bus, f->event, SD_EVENT_PRIORITY_NORMAL), >=, 0);
        return bus;
}

static Client *client_as(TransportFixture *f, uid_t uid, bool relay) {
        return client_on_fd(f, connect_peer(f, uid, relay));
}

/* A client of broker.sock by its address, as rma_client_open() connects. */
static Client *client_of_socket(TransportFixture *f) {
        g_autofree char *address = g_strdup_printf("unix:path=%s", socket_server_path(f->server));
        Client *bus = NULL;

        g_assert_cmpint(sd_bus_new(&bus), >=, 0);
        g_assert_cmpint(sd_bus_set_address(bus, address), >=, 0);
        g_assert_cmpint(sd_bus_set_bus_client(bus, 0), >=, 0);
        g_assert_cmpint(sd_bus_negotiate_fds(bus, 1), >=, 0);
        g_assert_cmpint(sd_bus_start(bus), >=, 0);
        g_assert_cmpint(sd_bus_attach_event(bus, f->event, SD_EVENT_PRIORITY_NORMAL), >=, 0);
        return bus;
}

/* A bare connection to broker.sock, for bytes that no D-Bus library sends. */
static int connect_raw(TransportFixture *f) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        g_assert_cmpint(fd, >=, 0);
        g_strlcpy(sa.sun_path, socket_server_path(f->server), sizeof(sa.sun_path));
        g_assert_cmpint(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), ==, 0);
        return fd;
}

/* Has the broker closed fd's other end? Whatever it said before is read and dropped. */
static bool hung_up(int fd) {
        char buf[256];

        for (;;) {
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n > 0)
                        continue;
                return n == 0 || (errno != EAGAIN && errno != EINTR);
        }
}

typedef struct Reply {
        bool done;
        sd_bus_message *msg;
} Reply;

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Reply *reply = userdata;

        reply->msg = sd_bus_message_ref(m);
        reply->done = true;
        return 0;
}

/* Call member of the broker's object with the arguments of types, and run the loop until
 * the reply (a return or an error) is in. */
static sd_bus_message *call_va(TransportFixture *f, sd_bus *bus, const char *member, const char *types, va_list ap) {
        g_autoptr(sd_bus_message) m = NULL;
        Reply reply = { 0 };

        g_assert_cmpint(sd_bus_message_new_method_call(bus, &m, NULL, RMA_OBJECT_PATH, RMA_INTERFACE, member), >=, 0);
        g_assert_cmpint(sd_bus_message_appendv(m, types, ap), >=, 0);
        g_assert_cmpint(sd_bus_call_async(bus, NULL, m, on_reply, &reply, 5 * G_USEC_PER_SEC), >=, 0);
        PUMP_UNTIL(f->event, reply.done);
        return reply.msg;
}

/* The call succeeds: its reply, for reading. */
static sd_bus_message *call_ok(TransportFixture *f, sd_bus *bus, const char *member, const char *types, ...) {
        sd_bus_message *reply;
        va_list ap;

        va_start(ap, types);
        reply = call_va(f, bus, member, types, ap);
        va_end(ap);
        if (sd_bus_message_is_method_error(reply, NULL))
                g_error("%s failed: %s: %s", member, sd_bus_message_get_error(reply)->name,
                        sd_bus_message_get_error(reply)->message);
        return reply;
}

/* The call fails with the error name, and its message says text. */
static void call_fails(TransportFixture *f, sd_bus *bus, const char *name, const char *text, const char *member,
                       const char *types, ...) {
        g_autoptr(sd_bus_message) reply = NULL;
        const sd_bus_error *e;
        va_list ap;

        va_start(ap, types);
        reply = call_va(f, bus, member, types, ap);
        va_end(ap);
        e = sd_bus_message_get_error(reply);
        if (!e)
                g_error("%s succeeded; expected %s (%s)", member, name, text);
        g_assert_cmpstr(e->name, ==, name);
        if (!e->message || !strstr(e->message, text))
                g_error("%s: expected '%s' in: %s", member, text, e->message);
}

static Slot *reserve_as_root(TransportFixture *f, const char *uuid, const char *domain) {
        Caller root = { .uid = 0, .gids_known = true, .cgroup_fd = -1, .pidfd = -1 };
        g_autofree char *message = NULL;
        Slot *s = NULL;

        if (broker_reserve(f->base.broker, &root, uuid, domain, "", 0, &s, &message) != BROKER_OK)
                g_error("Reserve %s refused: %s", domain, message);
        return s;
}

static char *name_of_length(size_t n) {
        char *name = g_malloc(n + 1);

        memset(name, 'n', n);
        name[n] = '\0';
        return name;
}

/* Reserve's arguments are checked before anything changes, and each refusal says what is
 * wrong with which argument. Through the relay, which every kernel before 6.16 uses. */
static void test_reserve_arguments(TransportFixture *f, gconstpointer data) {
        g_autoptr(Client) bus = client_as(f, 0, true);
        g_autofree char *longest = name_of_length(RMA_NAME_MAX), *too_long = name_of_length(RMA_NAME_MAX + 1);
        const char *invalid = ERROR_PREFIX "InvalidArgument";

        call_fails(f, bus, invalid, "'not-a-uuid' is not a domain UUID", "Reserve", "sss", "not-a-uuid", "dom-a", "");
        call_fails(f, bus, invalid, "'" UUID_A "x' is not a domain UUID", "Reserve", "sss", UUID_A "x", "dom-a", "");
        call_fails(f, bus, invalid, "Domain name must be 1 to 255 bytes", "Reserve", "sss", UUID_A, too_long, "");
        call_fails(f, bus, invalid, "Domain name must be 1 to 255 bytes", "Reserve", "sss", UUID_A, "", "");
        call_fails(f, bus, invalid, "Domain name must be 1 to 255 bytes", "Reserve", "sss", UUID_A, "dom\na", "");
        call_fails(f, bus, invalid, "Tenant name must be 1 to 255 bytes", "Reserve", "sss", UUID_A, "dom-a", too_long);
        /* The wrong signature is sd-bus's to refuse: the handler never runs. */
        call_fails(f, bus, "org.freedesktop.DBus.Error.InvalidArgs", "", "Reserve", "ss", UUID_A, "dom-a");
        g_assert_cmpuint(pool_count(f->base.broker->pool, SLOT_RESERVED), ==, 0);
        g_assert_null(pool_find(f->base.broker->pool, UUID_A));
        /* The longest name is still a name. */
        {
                g_autoptr(sd_bus_message) reply = call_ok(f, bus, "Reserve", "sss", UUID_A, longest, "");
                uint32_t slot = UINT32_MAX;
                Slot *s;

                g_assert_cmpint(sd_bus_message_read(reply, "u", &slot), >, 0);
                s = pool_find(f->base.broker->pool, UUID_A);
                g_assert_nonnull(s);
                g_assert_cmpuint(s->index, ==, slot);
                g_assert_cmpstr(s->domain, ==, longest);
                g_assert_cmpuint(s->reserved_by, ==, 0);
        }
}

/* ForgetRegion: root only; a slot that does not exist or is not pinned is refused; a
 * pinned one is refilled. */
static void test_forget_region(TransportFixture *f, gconstpointer data) {
        g_autoptr(Client) root = client_as(f, 0, false), nobody = client_as(f, NOBODY, false);
        const char *invalid = ERROR_PREFIX "InvalidArgument";
        Pool *pool = f->base.broker->pool;
        int old_fd = -EBADF;
        Slot *s;

        call_fails(f, nobody, ERROR_PREFIX "AccessDenied", "root only; uid 65534 may read", "ForgetRegion", "u", 0);
        call_fails(f, root, invalid, "There is no RMA slot 7; the pool has 3", "ForgetRegion", "u", 7);
        call_fails(f, root, invalid, "There is no RMA slot 4294967295", "ForgetRegion", "u", UINT32_MAX);
        call_fails(f, root, invalid, "RMA slot 0 is free; only a slot whose old region", "ForgetRegion", "u", 0);
        /* A lease ended whose old region nothing can watch: pinned until root says otherwise. */
        s = reserve_as_root(f, UUID_A, "dom-a");
        g_assert_cmpint(pool_lease(pool, s, getpid(), 0), ==, 0);
        pool_end_lease(pool, s, &old_fd);
        safe_close(old_fd);
        recycler_pin(f->recycler, s);
        g_assert_cmpint(s->state, ==, SLOT_HELD_ELSEWHERE);
        call_fails(f, nobody, ERROR_PREFIX "AccessDenied", "root only", "ForgetRegion", "u", s->index);
        g_assert_true(s->pinned);
        sd_bus_message_unref(call_ok(f, root, "ForgetRegion", "u", s->index));
        PUMP_UNTIL(f->event, s->state == SLOT_FREE);
        g_assert_false(s->pinned);
        g_assert_cmpint(s->region_fd, >=, 0);
}

/* Every refusal of the core comes out under its documented D-Bus name, with the core's
 * message. The first reservation's slot is claimed for real: its region is the reply. */
static const char refusal_policy[] = "[Tenant acme]\nMaxRmas=1\nDomains=acme-*\n\n[Tenant other]\nDomains=other-*\n";

static void test_refusals(TransportFixture *f, gconstpointer data) {
        static const char *const documented[] = {
                [BROKER_OK] = NULL,
                [BROKER_ACCESS_DENIED] = ERROR_PREFIX "AccessDenied",
                [BROKER_INVALID_ARGUMENT] = ERROR_PREFIX "InvalidArgument",
                [BROKER_ALREADY_RESERVED] = ERROR_PREFIX "AlreadyReserved",
                [BROKER_ALREADY_CLAIMED] = ERROR_PREFIX "AlreadyClaimed",
                [BROKER_NOT_RESERVED] = ERROR_PREFIX "NotReserved",
                [BROKER_NO_SUCH_TENANT] = ERROR_PREFIX "NoSuchTenant",
                [BROKER_QUOTA_EXCEEDED] = ERROR_PREFIX "QuotaExceeded",
                [BROKER_POOL_EXHAUSTED] = ERROR_PREFIX "PoolExhausted",
                [BROKER_DRAINING] = ERROR_PREFIX "Draining",
        };
        /* A refusal added to the core needs its name here, and a case below. */
        G_STATIC_ASSERT(G_N_ELEMENTS(documented) == _BROKER_REFUSAL_MAX);
        g_autoptr(Client) root = client_as(f, 0, false), nobody = client_as(f, NOBODY, false);
        g_autoptr(Client) qemu = client_as(f, QEMU_UID, false);
        g_autofree char *policy_file = g_build_filename(f->base.dir, "policy.d", "10-test.conf", NULL);
        Slot *s;

        sd_bus_message_unref(call_ok(f, root, "Reserve", "sss", UUID_A, "acme-1", ""));
        call_fails(f, nobody, documented[BROKER_ACCESS_DENIED], "uid 65534 may not call Reserve for tenant acme",
                   "Reserve", "sss", UUID_B, "acme-2", "");
        call_fails(f, root, documented[BROKER_INVALID_ARGUMENT], "'nope' is not a domain UUID", "Release", "s", "nope");
        call_fails(f, root, documented[BROKER_ALREADY_RESERVED], "already reserved for domain acme-1 by uid 0",
                   "Reserve", "sss", UUID_A, "acme-other", "");
        call_fails(f, root, documented[BROKER_QUOTA_EXCEEDED], "No RMA for domain acme-2", "Reserve", "sss", UUID_B,
                   "acme-2", "");
        call_fails(f, root, documented[BROKER_NO_SUCH_TENANT], "No RMA for domain web-1", "Reserve", "sss", UUID_B,
                   "web-1", "");
        call_fails(f, nobody, documented[BROKER_NO_SUCH_TENANT], "no tenant 'nope'", "GetTenant", "s", "nope");
        call_fails(f, qemu, documented[BROKER_NOT_RESERVED], "No RMA is reserved for domain " UUID_E, "Claim", "s",
                   UUID_E);
        /* The claim itself: the slot's very region, and a lease of the connecting process. */
        s = pool_find(f->base.broker->pool, UUID_A);
        {
                g_autoptr(sd_bus_message) reply = call_ok(f, qemu, "Claim", "s", UUID_A);
                struct stat st;
                uint64_t size = 0;
                int fd = -EBADF;

                g_assert_cmpint(sd_bus_message_read(reply, "ht", &fd, &size), >=, 0);
                g_assert_cmpuint(size, ==, 1u << 20);
                g_assert_cmpint(fstat(fd, &st), ==, 0);
                g_assert_cmpuint(st.st_ino, ==, s->region_ino);
                g_assert_cmpint(s->state, ==, SLOT_LEASED);
                g_assert_nonnull(s->lease);
                g_assert_cmpint(s->pid, ==, getpid());
        }
        call_fails(f, qemu, documented[BROKER_ALREADY_CLAIMED], "already claimed by pid", "Claim", "s", UUID_A);
        /* Fill the pool: the next one finds none free. */
        sd_bus_message_unref(call_ok(f, root, "Reserve", "sss", UUID_C, "other-1", ""));
        sd_bus_message_unref(call_ok(f, root, "Reserve", "sss", UUID_D, "other-2", ""));
        call_fails(f, root, documented[BROKER_POOL_EXHAUSTED], "all 3 RMAs of 1 MiB are taken (2 reserved, 1 leased",
                   "Reserve", "sss", UUID_E, "other-3", "");
        /* Draining: no new reservation, a retried one keeps its slot; for admins only. */
        call_fails(f, nobody, documented[BROKER_ACCESS_DENIED], "Drain changes the pool and is for root only", "Drain",
                   "s", "maintenance");
        sd_bus_message_unref(call_ok(f, root, "Drain", "s", "firmware update"));
        g_assert_cmpstr(f->base.broker->drain_reason, ==, "firmware update");
        sd_bus_message_unref(call_ok(f, root, "Release", "s", UUID_D));
        call_fails(f, root, documented[BROKER_DRAINING], "this host is draining (firmware update)", "Reserve", "sss",
                   UUID_E, "other-3", "");
        sd_bus_message_unref(call_ok(f, root, "Reserve", "sss", UUID_C, "other-1", ""));
        call_fails(f, root, documented[BROKER_INVALID_ARGUMENT], "The reason must be", "Drain", "s", "a\nb");
        sd_bus_message_unref(call_ok(f, root, "Undrain", ""));
        g_assert_null(f->base.broker->drain_reason);
        sd_bus_message_unref(call_ok(f, root, "Reserve", "sss", UUID_E, "other-3", ""));
        /* Not a refusal of the core's, but documented with them: a reload that fails. */
        call_fails(f, nobody, documented[BROKER_ACCESS_DENIED], "Reload changes the pool and is for root only",
                   "Reload", "");
        g_assert_true(g_file_set_contents(policy_file, "[Tenant acme]\nMaxRmas=many\n", -1, NULL));
        call_fails(f, root, ERROR_PREFIX "PolicyInvalid", "was not applied; the current one stays", "Reload", "");
        g_assert_nonnull(policy_find_tenant(f->base.broker->policy, "other"));
}

/* The transport's credentials, never what the client says: a connection read as uid
 * 65534 may not administer, whatever this process is. */
static void test_credentials_of_connection(TransportFixture *f, gconstpointer data) {
        g_autoptr(Client) root = client_as(f, 0, false), nobody = client_as(f, NOBODY, true);
        g_autoptr(sd_bus_message) yes = call_ok(f, root, "CanAdminister", "");
        g_autoptr(sd_bus_message) no = call_ok(f, nobody, "CanAdminister", "");
        const char *why = NULL;
        int allowed = -1;

        g_assert_cmpint(sd_bus_message_read(yes, "bs", &allowed, &why), >, 0);
        g_assert_true(allowed);
        g_assert_cmpstr(why, ==, "");
        g_assert_cmpint(sd_bus_message_read(no, "bs", &allowed, &why), >, 0);
        g_assert_false(allowed);
        g_assert_nonnull(strstr(why, "uid 65534 may look"));
}

static void server_start(TransportFixture *f) {
        g_assert_cmpint(socket_server_new(f->event, f->base.broker->config, &f->service, -EBADF, &f->server), ==, 0);
}

/* A client of broker.sock is accepted and known by what the kernel says of it: its pid
 * and start time become the lease's holder, its uid decides what it may do. */
static void test_accept_reads_credentials(TransportFixture *f, gconstpointer data) {
        g_autofree char *path = g_build_filename(f->base.dir, RMA_SOCKET_NAME, NULL);
        BrokerConfig *config = f->base.broker->config;
        g_autoptr(Client) bus = NULL;
        uint64_t start = 0;
        struct stat st;
        Slot *s;

        /* This process claims (QemuUsers), and the cgroup check is off (the fixture's). */
        config->qemu_uids = g_renew(uid_t, config->qemu_uids, config->n_qemu_uids + 1);
        config->qemu_uids[config->n_qemu_uids++] = geteuid();
        server_start(f);
        g_assert_cmpstr(socket_server_path(f->server), ==, path);
        g_assert_cmpint(lstat(path, &st), ==, 0);
        g_assert_true(S_ISSOCK(st.st_mode));
        s = reserve_as_root(f, UUID_A, "dom-a");
        bus = client_of_socket(f);
        {
                g_autoptr(sd_bus_message) reply = call_ok(f, bus, "CanAdminister", "");
                const char *why = NULL;
                int allowed = -1;

                g_assert_cmpint(sd_bus_message_read(reply, "bs", &allowed, &why), >, 0);
                g_assert_cmpint(allowed, ==, geteuid() == 0);
        }
        {
                g_autoptr(sd_bus_message) reply = call_ok(f, bus, "Claim", "s", UUID_A);
                int fd = -EBADF;
                uint64_t size = 0;

                g_assert_cmpint(sd_bus_message_read(reply, "ht", &fd, &size), >=, 0);
                g_assert_cmpint(fstat(fd, &st), ==, 0);
                g_assert_cmpuint(st.st_ino, ==, s->region_ino);
        }
        g_assert_cmpint(proc_start_time(getpid(), &start), ==, 0);
        g_assert_cmpint(s->state, ==, SLOT_LEASED);
        g_assert_cmpint(s->pid, ==, getpid());
        g_assert_cmpuint(s->pid_start, ==, start);
        /* Stopping serves nobody more and removes the socket file. */
        bus = sd_bus_close_unref(bus);
        f->server = socket_server_free(f->server);
        g_assert_cmpint(lstat(path, &st), <, 0);
        g_assert_cmpint(errno, ==, ENOENT);
}

/* Bytes that are not D-Bus: the connection is closed, nothing of it stays, and the
 * broker goes on serving. Sent before the broker accepted, they are refused at accept
 * (sd_bus_start reads them); sent to a peer waiting for authentication, it is dropped. */
static void test_garbage_dropped(TransportFixture *f, gconstpointer data) {
        static const char junk[] = "GET / HTTP/1.0\r\n\r\n";
        unsigned before;

        server_start(f);
        before = open_fds();
        for (int accepted_first = 0; accepted_first < 2; accepted_first++) {
                _cleanup_close_ int fd = connect_raw(f);

                if (accepted_first)
                        /* More than the client's end: the broker serves the connection. */
                        PUMP_UNTIL(f->event, open_fds() > before + 1);
                g_assert_cmpint(write(fd, junk, sizeof(junk) - 1), ==, (ssize_t) sizeof(junk) - 1);
                PUMP_UNTIL(f->event, hung_up(fd));
                fd = safe_close(fd);
                g_assert_cmpuint(open_fds(), ==, before);
        }
        {
                g_autoptr(Client) bus = client_of_socket(f);
                sd_bus_message_unref(call_ok(f, bus, "ListRmas", ""));
        }
}

/* Through the relay, an fd a client attaches is closed and the client dropped; the relay
 * never hands it to sd-bus. */
static void test_relay_drops_fds(TransportFixture *f, gconstpointer data) {
        _cleanup_close_ int fd = -EBADF, passed = -EBADF;
        unsigned before = open_fds();
        char byte = 0;
        union {
                struct cmsghdr align;
                uint8_t space[CMSG_SPACE(sizeof(int))];
        } control = { 0 };
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                             .msg_controllen = sizeof(control) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

        passed = open("/dev/null", O_RDONLY | O_CLOEXEC);
        g_assert_cmpint(passed, >=, 0);
        fd = connect_peer(f, NOBODY, true);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &passed, sizeof(int));
        /* The NUL that starts D-Bus authentication, with the fd. */
        g_assert_cmpint(sendmsg(fd, &mh, MSG_NOSIGNAL), ==, 1);
        PUMP_UNTIL(f->event, hung_up(fd));
        g_assert_cmpuint(f->n_gone, ==, 1);
        g_assert_cmpuint(g_hash_table_size(f->peers), ==, 0);
        fd = safe_close(fd);
        passed = safe_close(passed);
        /* The copy the broker received is closed too. */
        g_assert_cmpuint(open_fds(), ==, before);
}

/* A connection that says nothing is closed after ConnectionTimeoutSec=, not before. */
static void test_idle_dropped(TransportFixture *f, gconstpointer data) {
        const uint64_t timeout = 200 * 1000;
        _cleanup_close_ int fd = -EBADF;
        uint64_t started;

        f->base.broker->config->connection_timeout_usec = timeout;
        server_start(f);
        started = g_get_monotonic_time();
        fd = connect_raw(f);
        pump_for(f, timeout / 4);
        g_assert_false(hung_up(fd));
        PUMP_UNTIL(f->event, hung_up(fd));
        g_assert_cmpuint(g_get_monotonic_time() - started, >=, timeout);
}

/* MaxConnections=: one more is closed at once, and a connection that went away gives its
 * place back. */
static void test_connection_limit(TransportFixture *f, gconstpointer data) {
        g_autoptr(Client) first = NULL, third = NULL;
        _cleanup_close_ int second = -EBADF;
        unsigned before;

        f->base.broker->config->max_connections = 1;
        server_start(f);
        before = open_fds();
        first = client_of_socket(f);
        sd_bus_message_unref(call_ok(f, first, "ListRmas", ""));
        second = connect_raw(f);
        PUMP_UNTIL(f->event, hung_up(second));
        sd_bus_message_unref(call_ok(f, first, "ListRmas", ""));
        second = safe_close(second);
        first = sd_bus_close_unref(first);
        /* Its peer is gone once its fds are. */
        PUMP_UNTIL(f->event, open_fds() == before);
        third = client_of_socket(f);
        sd_bus_message_unref(call_ok(f, third, "ListRmas", ""));
}

/* connect() to path as uid, in a child: 0 or the errno. */
static int connect_as(const char *path, uid_t uid) {
        int status;
        pid_t pid = fork();

        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

                g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
                if (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
                        _exit(255);
                _exit(connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ? errno : 0);
        }
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        return WEXITSTATUS(status);
}

/* broker-priv.sock: root's and the QemuUsers' alone (owner rw, one ACL entry each, no
 * one else), removed when the broker stops. */
static void test_privileged_socket(TransportFixture *f, gconstpointer data) {
        g_autofree char *path = g_build_filename(f->base.dir, RMA_PRIVILEGED_SOCKET_NAME, NULL);
        BrokerConfig *config = f->base.broker->config;
        const uid_t qemu = 4242, other = 4244;
        uint8_t acl[256];
        ssize_t n;
        struct stat st;
        bool found = false;

        config->qemu_uids = g_renew(uid_t, config->qemu_uids, config->n_qemu_uids + 1);
        config->qemu_uids[config->n_qemu_uids++] = qemu;
        server_start(f);
        g_assert_cmpint(lstat(path, &st), ==, 0);
        g_assert_true(S_ISSOCK(st.st_mode));
        /* Group bits show the ACL's mask; others get nothing. */
        g_assert_cmpint(st.st_mode & 0777, ==, 0660);
        n = getxattr(path, "system.posix_acl_access", acl, sizeof(acl));
        g_assert_cmpint(n, >, 4);
        for (ssize_t off = 4; off + 8 <= n; off += 8) {
                uint16_t tag;
                uint32_t id;

                memcpy(&tag, acl + off, 2);
                memcpy(&id, acl + off + 4, 4);
                if (tag == 0x02) {  /* a named user: a QEMU user, never anyone else */
                        found = found || id == qemu;
                        g_assert_true(broker_config_uid_may_claim(config, id));
                }
        }
        g_assert_true(found);
        if (geteuid() == 0) {
                /* Where the directory lets them look, only the QEMU user gets in. */
                g_assert_cmpint(chmod(f->base.dir, 0755), ==, 0);
                g_assert_cmpint(connect_as(path, other), ==, EACCES);
                g_assert_cmpint(connect_as(path, qemu), ==, 0);
        }
        f->server = socket_server_free(f->server);
        g_assert_cmpint(lstat(path, &st), <, 0);
}

#define add(path, data, fn) \
        g_test_add(path, TransportFixture, data, transport_set_up, fn, transport_tear_down)

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL);
        /* A client that hangs up mid-reply must not kill the test (the daemon ignores it too). */
        (void) signal(SIGPIPE, SIG_IGN);
        add("/transport/reserve-arguments", NULL, test_reserve_arguments);
        add("/transport/forget-region", NULL, test_forget_region);
        add("/transport/refusals", refusal_policy, test_refusals);
        add("/transport/credentials-of-connection", NULL, test_credentials_of_connection);
        add("/transport/accept-reads-credentials", NULL, test_accept_reads_credentials);
        add("/transport/garbage-dropped", NULL, test_garbage_dropped);
        add("/transport/relay-drops-fds", NULL, test_relay_drops_fds);
        add("/transport/idle-dropped", NULL, test_idle_dropped);
        add("/transport/connection-limit", NULL, test_connection_limit);
        add("/transport/privileged-socket", NULL, test_privileged_socket);
        return g_test_run();
}
