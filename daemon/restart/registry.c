/* The lease registry: fixed-size checksummed text records, one pwrite() per change. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "registry.h"
#include "regular-file.h"
#include "rma-util.h"

/* A record is one line padded with spaces to this size, so `cat` shows the file. Names
 * too long for it go whole to the slot's record in REGISTRY_NAMES_FILE_NAME, a file of
 * NAMES_RECORD_SIZE records that only such slots touch (its blocks reserved like the main
 * file's, so that a full /run fails no record): the main file stays small to read at any
 * pool size, and no name is ever cut (a cut name would fail its cgroup check after a
 * restart). NAMES_RECORD_SIZE holds two names of RMA_NAME_MAX bytes,
 * every byte escaped (%XX). */
#define RECORD_SIZE 512
#define NAMES_RECORD_SIZE 2048
#define REGISTRY_NAMES_FILE_NAME "leases.names"
#define REGISTRY_SPARE_SUFFIX ".spare"
#define SUM_SIZE 22   /* " sum=" and 16 hex digits; then '\n' */
#define SUM_LINE_SIZE 17   /* a slot's line in REGISTRY_SUMS_FILE_NAME: 16 hex digits and '\n' */

/* Records go out with pwrite(), never through a shared mapping: root may truncate or
 * replace the file under the broker (`: > leases`, a backup restored over it), and a write
 * through a mapping past the new end is a SIGBUS; a pwrite() there only extends the file.
 * registry_check() then notices and writes the whole registry again. */
struct Registry {
        int fd;
        int names_fd;
        int sums_fd;                  /* REGISTRY_SUMS_FILE_NAME, written in place; -EBADF when it could not be */
        char *runtime_dir;
        char *path;
        char *names_path;
        char *sums_path;
        char *spare_path, *names_spare_path;   /* the next registry, its space reserved */
        size_t size;                  /* header and every record */
        size_t names_size;            /* every slot's names record: reserved too */
        bool failing;
        bool spare_failing;
        uint64_t rewrite_failed_at;   /* monotonic µs of registry_check's last failed rewrite */
        char header[RECORD_SIZE];     /* as written: a file truncated and written again lacks it */
        char *image;                  /* every byte of the file as the broker wrote it (size bytes) */
};

/* A record's text, built in place. Every change of a slot writes one before its reply
 * goes out, so this is on the Claim's path: plain appends, not a printf conversion per
 * field (which cost more than the rest of a Claim's own work). */
typedef struct RecordText {
        char *p;
        char *end;          /* the last byte stays free for the terminating NUL */
        bool overflow;
} RecordText;

static RecordText record_text(char *buf, size_t size) {
        return (RecordText) { .p = buf, .end = buf + size - 1 };
}

static void text_mem(RecordText *t, const char *s, size_t n) {
        if (t->overflow || n > (size_t) (t->end - t->p)) {
                t->overflow = true;
                return;
        }
        t->p = mempcpy(t->p, s, n);
        *t->p = '\0';
}

static void text_str(RecordText *t, const char *s) {
        text_mem(t, s, strlen(s));
}

static void text_u64(RecordText *t, uint64_t v) {
        char digits[20], *q = digits + sizeof(digits);

        do
                *--q = (char) ('0' + v % 10);
        while ((v /= 10) != 0);
        text_mem(t, q, (size_t) (digits + sizeof(digits) - q));
}

static void text_int(RecordText *t, int v) {
        if (v < 0)
                text_str(t, "-");
        text_u64(t, v < 0 ? -(uint64_t) v : (uint64_t) v);
}

static void text_hex64(RecordText *t, uint64_t v) {
        static const char hex[] = "0123456789abcdef";
        char digits[16];

        for (int i = 15; i >= 0; i--, v >>= 4)
                digits[i] = hex[v & 15];
        text_mem(t, digits, sizeof(digits));
}

/* " region=DEV:INO" */
static void text_region(RecordText *t, uint64_t dev, uint64_t ino) {
        text_str(t, " region=");
        text_u64(t, dev);
        text_str(t, ":");
        text_u64(t, ino);
}

/* The body's length, or -1 when it did not fit. */
static int text_length(const RecordText *t, const char *buf) {
        return t->overflow ? -1 : (int) (t->p - buf);
}

/* "BODY sum=HEX" padded to size, ending in '\n'. */
static bool seal_record(char *rec, size_t size, size_t body_len) {
        RecordText t;

        if (body_len + SUM_SIZE + 1 > size)
                return false;
        t = record_text(rec + body_len, size - body_len);
        text_str(&t, " sum=");
        text_hex64(&t, rma_fnv1a(rec, body_len));
        memset(t.p, ' ', (size_t) (rec + size - 1 - t.p));
        rec[size - 1] = '\n';
        return true;
}

/* The body of a record of size bytes into buf (NUL-terminated, at least size bytes), if
 * its checksum holds. A restart reads every record: no allocation, one pass. */
static bool open_record(const char *rec, size_t size, char *buf) {
        const size_t sum_text = SUM_SIZE - 1;   /* " sum=" and 16 hex digits, before the '\n' */
        const char *end = memchr(rec, '\n', size), *sum;
        char hex[17];
        guint64 want;
        size_t n;

        if (!end)
                return false;
        n = (size_t) (end - rec);
        while (n > 0 && g_ascii_isspace(rec[n - 1]))
                n--;
        if (n < sum_text || memcmp(rec + n - sum_text, " sum=", 5) != 0)
                return false;
        sum = rec + n - sum_text;
        memcpy(hex, sum + 5, 16);
        hex[16] = '\0';
        if (!g_ascii_string_to_unsigned(hex, 16, 0, G_MAXUINT64, &want, NULL) ||
            rma_fnv1a(rec, (size_t) (sum - rec)) != want || memchr(rec, '\0', (size_t) (sum - rec)))
                return false;
        memcpy(buf, rec, (size_t) (sum - rec));
        buf[sum - rec] = '\0';
        return true;
}

/* The words of a record body, split in place: "key=value" (or a bare word, value NULL). */
#define RECORD_WORDS_MAX 32
typedef struct RecordWords {
        unsigned n;
        const char *key[RECORD_WORDS_MAX];
        const char *value[RECORD_WORDS_MAX];
} RecordWords;

static bool split_words(char *body, RecordWords *w) {
        char *save = NULL;

        w->n = 0;
        for (char *word = strtok_r(body, " ", &save); word; word = strtok_r(NULL, " ", &save)) {
                char *eq = strchr(word, '=');
                if (w->n == RECORD_WORDS_MAX)
                        return false;
                if (eq)
                        *eq = '\0';
                w->key[w->n] = word;
                w->value[w->n] = eq ? eq + 1 : NULL;
                w->n++;
        }
        return true;
}

/* Escaped whole: no space, '%' or control character is left, so a name is one word. */
static char *escape_name(const char *s) {
        if (!s)
                return g_strdup("");
        /* Most names need no escaping: skip the escaper's allocation and walk for them. */
        for (const char *c = s;; c++) {
                if (*c == '\0')
                        return g_strdup(s);
                if (!g_ascii_isalnum(*c) && *c != '-' && *c != '.' && *c != '_' && *c != '~')
                        break;
        }
        return g_uri_escape_string(g_utf8_validate(s, -1, NULL) ? s : "", NULL, FALSE);
}

/* Expiry is kept in CLOCK_MONOTONIC, which restarts with the host but not with the
 * broker; the registry speaks wall-clock time, so that a record means the same to the
 * next broker whatever happened between. */
static uint64_t realtime_of(uint64_t monotonic_usec) {
        uint64_t now_mono = rma_now_usec(CLOCK_MONOTONIC), now_real = rma_now_usec(CLOCK_REALTIME);

        return monotonic_usec > now_mono ? now_real + (monotonic_usec - now_mono) : now_real;
}

static uint64_t monotonic_of(uint64_t realtime_usec) {
        uint64_t now_mono = rma_now_usec(CLOCK_MONOTONIC), now_real = rma_now_usec(CLOCK_REALTIME);

        return realtime_usec > now_real ? now_mono + (realtime_usec - now_real) : 0;
}

static const char *boot_id(void) {
        static char id[40];

        if (!id[0]) {
                g_autofree char *text = NULL;
                if (g_file_get_contents("/proc/sys/kernel/random/boot_id", &text, NULL, NULL))
                        g_strlcpy(id, g_strstrip(text), sizeof(id));
                else
                        g_strlcpy(id, "unknown", sizeof(id));
        }
        return id;
}

static void write_failed(Registry *r, ssize_t n) {
        if (!r->failing)
                log_error_errno(n < 0 ? errno : EIO, "Cannot write the lease registry %s (%m): a restart of "
                                "rma-brokerd now may lose leases", r->path);
        r->failing = true;
}

/* The record's checksum in the sums file, after the record: a broker killed between the
 * two leaves a record that its sum does not vouch for, which the next broker treats as
 * lost (proves, rebuilds or pins the slot), never as proof of anything. */
static void write_sum(Registry *r, unsigned index, uint64_t sum) {
        char line[SUM_LINE_SIZE + 1];
        RecordText t = record_text(line, sizeof(line));
        ssize_t n;

        if (r->sums_fd < 0)
                return;
        text_hex64(&t, sum);
        text_str(&t, "\n");
        n = pwrite(r->sums_fd, line, SUM_LINE_SIZE, (off_t) index * SUM_LINE_SIZE);
        if (n != SUM_LINE_SIZE)
                write_failed(r, n);
}

/* Into the page cache, which outlives a crashed broker as the file does. A broker killed
 * in the middle of the write leaves that one record torn: its checksum
 * fails, and the next broker treats it as lost (proves, rebuilds or pins the slot),
 * never as another record. */
static void write_record(Registry *r, unsigned index, const char *rec, uint64_t sum) {
        size_t off = (size_t) (index + 1) * RECORD_SIZE;
        ssize_t n;

        memcpy(r->image + off, rec, RECORD_SIZE);
        n = pwrite(r->fd, rec, RECORD_SIZE, (off_t) off);

        if (n == RECORD_SIZE) {
                r->failing = false;
                write_sum(r, index, sum);
                return;
        }
        if (!r->failing)
                log_error_errno(n < 0 ? errno : EIO, "Cannot write the lease registry %s (%m): a restart of "
                                "rma-brokerd now may lose leases", r->path);
        r->failing = true;
}

/* The slot's names, whole, in the names file; written before the record that points to
 * it. Returns what that record says of them ("side:CHECKSUM"), or NULL on failure. */
static char *write_names(Registry *r, unsigned index, const char *domain, const char *tenant) {
        char rec[NAMES_RECORD_SIZE];
        int n = snprintf(rec, sizeof(rec), "slot=%u domain=%s tenant=%s", index, domain, tenant);
        ssize_t k;

        if (n < 0 || (size_t) n >= sizeof(rec) || !seal_record(rec, sizeof(rec), (size_t) n)) {
                log_error("RMA slot %u: its names do not fit the registry; a restart now may lose its lease", index);
                return NULL;
        }
        k = pwrite(r->names_fd, rec, sizeof(rec), (off_t) index * NAMES_RECORD_SIZE);
        if (k != (ssize_t) sizeof(rec)) {
                write_failed(r, k);
                return NULL;
        }
        return g_strdup_printf("side:%016" PRIx64, rma_fnv1a(rec, (size_t) n));
}

/* The record of a slot that holds a domain (reserved or leased); long names go to the
 * names file. */
static void text_owned_slot(Registry *r, RecordText *t, const Slot *s, SlotState state) {
        g_autofree char *domain = escape_name(s->domain), *tenant = escape_name(s->tenant), *names = NULL;

        /* Inline when they fit (the common case); else whole in the names file. */
        if (strlen(domain) + strlen(tenant) > RECORD_SIZE / 2) {
                /* Unwritten names leave a record that reads back as garbage (so the next
                 * broker proves or pins the slot), never the stale one. */
                names = write_names(r, s->index, domain, tenant);
                if (!names)
                        names = g_strdup("lost");
                g_free(domain);
                g_free(tenant);
                domain = g_strdup("@");
                tenant = g_strdup("@");
        } else
                names = g_strdup("-");
        text_str(t, " state=");
        text_str(t, slot_state_to_string(state));
        text_str(t, " uuid=");
        text_str(t, s->uuid);
        text_str(t, " domain=");
        text_str(t, domain);
        text_str(t, " tenant=");
        text_str(t, tenant);
        text_str(t, " names=");
        text_str(t, names);
        text_str(t, " by=");
        text_u64(t, s->reserved_by);
        text_str(t, " pid=");
        text_int(t, state == SLOT_LEASED ? (int) s->pid : 0);
        text_str(t, " start=");
        text_u64(t, state == SLOT_LEASED ? s->pid_start : 0);
        text_str(t, " expires=");
        text_u64(t, state == SLOT_RESERVED ? realtime_of(s->expires_usec) : 0);
        text_region(t, s->region_dev, s->region_ino);
}

void registry_write_slot(Registry *r, const Slot *s) {
        char rec[RECORD_SIZE];
        g_autofree char *handle = NULL;
        SlotState state = s->state == SLOT_SCRUBBING ? SLOT_HELD_ELSEWHERE : s->state;
        RecordText t = record_text(rec, sizeof(rec));
        int n;

        if (!r)
                return;
        /* The handle is what lets the next broker prove the region gone or reopen it. */
        handle = region_handle_format(state == SLOT_HELD_ELSEWHERE ? &s->old_region_handle : &s->region_handle);
        text_str(&t, "slot=");
        text_u64(&t, s->index);
        if (state == SLOT_FREE) {
                text_str(&t, " state=free");
                text_region(&t, s->region_dev, s->region_ino);
        } else if (state == SLOT_HELD_ELSEWHERE && s->pinned && s->old_region_ino == 0) {
                /* Pinned for a region nobody could name (a lost record): "0:0" would read
                 * as "no region left", and the next broker would refill the slot. */
                g_free(handle);
                handle = g_strdup("-");
                text_str(&t, " state=held-elsewhere region=unknown");
        } else if (state == SLOT_HELD_ELSEWHERE) {
                /* The region is the one that may still be held: the old tenant's. */
                text_str(&t, " state=held-elsewhere");
                text_region(&t, s->old_region_dev, s->old_region_ino);
        } else
                text_owned_slot(r, &t, s, state);
        text_str(&t, " handle=");
        text_str(&t, handle);
        n = text_length(&t, rec);
        if (n < 0 || !seal_record(rec, sizeof(rec), (size_t) n)) {
                log_error("RMA slot %u: its registry record does not fit; a restart now may lose it", s->index);
                return;
        }
        write_record(r, s->index, rec, rma_fnv1a(rec, (size_t) n));
}

/* Every block of [0, size) owned now, so that no later pwrite() there needs space: 0 or
 * -errno. A filesystem without fallocate only gets its size. */
static int registry_reserve_space(int fd, off_t size) {
        if (fallocate(fd, 0, 0, size) == 0)
                return 0;
        if (errno != EOPNOTSUPP)
                return -errno;
        return ftruncate(fd, size) < 0 ? -errno : 0;
}

/* A file at path, regular, of exactly size bytes whose blocks are all reserved: the fd, or
 * -errno. An existing one (the spare) is reused as it is: its blocks were reserved when
 * /run had room. Anything else at the path (a FIFO) is removed first. */
static int reserved_file(const char *path, off_t size) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        fd = open(path, O_RDWR | O_CREAT | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 && fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
                fd = safe_close(fd);
                (void) unlink(path);
                fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, 0600);
        }
        if (fd < 0)
                return -errno;
        r = registry_reserve_space(fd, size);
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_size > size && ftruncate(fd, size) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* The spares: the next registry, its space reserved beside the one in use. A rewrite
 * (root truncated or replaced the file) writes into them and renames them into place, so
 * a full /run then loses no record. Failing to make them costs only that guarantee. */
static void registry_make_spares(Registry *r) {
        _cleanup_close_ int fd = reserved_file(r->spare_path, (off_t) r->size);
        _cleanup_close_ int names_fd = fd < 0 ? fd : reserved_file(r->names_spare_path, (off_t) r->names_size);

        if (names_fd < 0 && !r->spare_failing)
                log_warning_errno(-names_fd, "Cannot reserve space for the lease registry's next copy (%s: %m): if "
                                  "root truncates or replaces %s while /run is full, a restart may lose leases; free "
                                  "space in %s", fd < 0 ? r->spare_path : r->names_spare_path, r->path, r->runtime_dir);
        r->spare_failing = names_fd < 0;
}

/* The sums file, in place (whatever is at the path, a removed one made again), its blocks
 * reserved like the registry's. Without it the next broker finds old sums (or none) and
 * trusts fewer records, never more: a failure is logged, not fatal. */
static void registry_open_sums(Registry *r, const Pool *pool) {
        r->sums_fd = safe_close(r->sums_fd);
        r->sums_fd = reserved_file(r->sums_path, (off_t) pool->n_slots * SUM_LINE_SIZE);
        if (r->sums_fd < 0)
                log_warning_errno(-r->sums_fd, "Cannot write %s (%m): after a restart rma-brokerd cannot tell its "
                                  "own registry records from a restored copy's, and pins slots it would have "
                                  "re-adopted or refilled", r->sums_path);
}

/* Both files written into the spares (reserved beforehand, or now) and renamed over the
 * ones in place once whole: the old registry stays whole until this one is in place. */
static int registry_create(Registry *r, const Pool *pool) {
        _cleanup_close_ int fd = -EBADF, names_fd = -EBADF;
        char header[RECORD_SIZE];
        int n;

        fd = reserved_file(r->spare_path, (off_t) r->size);
        if (fd < 0)
                return log_error_errno(-fd, "Cannot write the lease registry %s: %m", r->spare_path);
        names_fd = reserved_file(r->names_spare_path, (off_t) r->names_size);
        if (names_fd < 0)
                return log_error_errno(-names_fd, "Cannot write the lease registry's names file %s: %m",
                                       r->names_spare_path);
        n = snprintf(header, sizeof(header), REGISTRY_MAGIC " v%u backend=%s size=%" PRIu64 " count=%u boot=%s",
                     REGISTRY_VERSION, pool->backend->ops->name, pool->backend->region_size, pool->n_slots, boot_id());
        if (!seal_record(header, sizeof(header), (size_t) n))
                return log_error_errno(EIO, "Cannot write the lease registry %s: its header does not fit", r->spare_path);
        memcpy(r->header, header, RECORD_SIZE);
        memset(r->image, 0, r->size);
        memcpy(r->image, header, RECORD_SIZE);
        if (pwrite(fd, header, RECORD_SIZE, 0) != RECORD_SIZE)
                return log_error_errno(errno ? errno : EIO, "Cannot write the lease registry %s: %m", r->spare_path);
        r->fd = safe_close(r->fd);
        r->names_fd = safe_close(r->names_fd);
        r->fd = TAKE_FD(fd);
        r->names_fd = TAKE_FD(names_fd);
        registry_open_sums(r, pool);
        r->failing = false;
        for (unsigned i = 0; i < pool->n_slots; i++)
                registry_write_slot(r, &pool->slots[i]);
        /* Names first: a record in place never points to a names file that is not. */
        if (rename(r->names_spare_path, r->names_path) < 0 || rename(r->spare_path, r->path) < 0)
                return log_error_errno(errno, "Cannot put the lease registry in place at %s: %m", r->path);
        /* The files just replaced are gone (their fds closed above): their space makes the
         * next spares. */
        registry_make_spares(r);
        return 0;
}

int registry_open(const char *runtime_dir, const Pool *pool, Registry **ret) {
        g_autoptr(Registry) r = g_new0(Registry, 1);
        int k;

        if (mkdir(runtime_dir, 0755) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Cannot create runtime directory %s: %m", runtime_dir);
        r->fd = r->names_fd = r->sums_fd = -EBADF;
        r->runtime_dir = g_strdup(runtime_dir);
        r->path = g_build_filename(runtime_dir, REGISTRY_FILE_NAME, NULL);
        r->names_path = g_build_filename(runtime_dir, REGISTRY_NAMES_FILE_NAME, NULL);
        r->sums_path = g_build_filename(runtime_dir, REGISTRY_SUMS_FILE_NAME, NULL);
        r->spare_path = g_strconcat(r->path, REGISTRY_SPARE_SUFFIX, NULL);
        r->names_spare_path = g_strconcat(r->names_path, REGISTRY_SPARE_SUFFIX, NULL);
        r->size = (size_t) (pool->n_slots + 1) * RECORD_SIZE;
        r->names_size = (size_t) pool->n_slots * NAMES_RECORD_SIZE;
        r->image = g_malloc0(r->size);
        k = registry_create(r, pool);
        if (k < 0)
                return k;
        *ret = g_steal_pointer(&r);
        return 0;
}

/* Is the file at path the one fd writes, at least min_size long? */
static bool file_intact(int fd, const char *path, off_t min_size) {
        struct stat at_fd, at_path;

        if (fstat(fd, &at_fd) < 0 || stat(path, &at_path) < 0)
                return false;
        return at_fd.st_dev == at_path.st_dev && at_fd.st_ino == at_path.st_ino && at_fd.st_size >= min_size;
}

/* The header as written: a truncated file that a later record write grew back to its
 * size has zeros there. */
static bool header_intact(Registry *r) {
        char now[RECORD_SIZE];

        return pread(r->fd, now, RECORD_SIZE, 0) == RECORD_SIZE && memcmp(now, r->header, RECORD_SIZE) == 0;
}

bool registry_check(Registry *r, const Pool *pool) {
        uint64_t now = (uint64_t) g_get_monotonic_time();

        if (!r || (file_intact(r->fd, r->path, (off_t) r->size) && header_intact(r) &&
                   file_intact(r->names_fd, r->names_path, (off_t) r->names_size) &&
                   (r->sums_fd < 0 || file_intact(r->sums_fd, r->sums_path, (off_t) (r->size / RECORD_SIZE - 1) *
                                                                                    SUM_LINE_SIZE))))
                return true;
        /* A failed rewrite (a full /run) is tried again at most every 10 s, not per change. */
        if (r->rewrite_failed_at && now - r->rewrite_failed_at < 10 * G_USEC_PER_SEC)
                return false;
        log_warning("The lease registry %s was truncated, removed or replaced under rma-brokerd (by root: nobody "
                    "else may write %s); writing it again from the broker's own state", r->path, r->runtime_dir);
        r->rewrite_failed_at = registry_create(r, pool) < 0 ? now : 0;
        return false;
}

/* Is every byte of the file what the broker wrote? A copy restored in place (`cp backup
 * leases`: the same inode, size and header) differs in some record. */
static bool content_intact(Registry *r) {
        g_autofree char *now = g_malloc(r->size);

        return pread(r->fd, now, r->size, 0) == (ssize_t) r->size && memcmp(now, r->image, r->size) == 0;
}

bool registry_verify(Registry *r, const Pool *pool) {
        if (!r || !registry_check(r, pool))
                return r == NULL;
        if (content_intact(r))
                return true;
        log_warning("The lease registry %s differs from what rma-brokerd wrote (a backup or another copy restored "
                    "over it, by root: nobody else may write %s); writing it again from the broker's own state",
                    r->path, r->runtime_dir);
        r->rewrite_failed_at = registry_create(r, pool) < 0 ? (uint64_t) g_get_monotonic_time() : 0;
        return false;
}

Registry *registry_free(Registry *r) {
        if (!r)
                return NULL;
        safe_close(r->fd);
        safe_close(r->names_fd);
        safe_close(r->sums_fd);
        g_free(r->runtime_dir);
        g_free(r->path);
        g_free(r->names_path);
        g_free(r->sums_path);
        g_free(r->spare_path);
        g_free(r->names_spare_path);
        g_free(r->image);
        g_free(r);
        return NULL;
}

/* The value of key in a record body's words (the first word with that key). */
static const char *field(const RecordWords *w, const char *key) {
        for (unsigned i = 0; i < w->n; i++)
                if (w->value[i] && strcmp(w->key[i], key) == 0)
                        return w->value[i];
        return NULL;
}

static bool parse_u64(const char *s, uint64_t *ret) {
        guint64 v;

        if (!s || !g_ascii_string_to_unsigned(s, 10, 0, G_MAXUINT64, &v, NULL))
                return false;
        *ret = v;
        return true;
}

/* A number that fits in its field, or the record is garbage (no silent truncation:
 * pid=4294967297 must not become pid 1). */
static bool parse_bounded(const char *s, uint64_t max, uint64_t *ret) {
        return parse_u64(s, ret) && *ret <= max;
}

static bool parse_region(const char *s, uint64_t *dev, uint64_t *ino) {
        const char *colon = s ? strchr(s, ':') : NULL;
        char major[24];

        if (!colon || (size_t) (colon - s) >= sizeof(major))
                return false;
        memcpy(major, s, (size_t) (colon - s));
        major[colon - s] = '\0';
        return parse_u64(major, dev) && parse_u64(colon + 1, ino);
}

/* escape_name() undone; most names have nothing escaped (NULL: a bad escape). */
static char *unescape_name(const char *s) {
        return !s || strchr(s, '%') ? g_uri_unescape_string(s, NULL) : g_strdup(s);
}

/* The names a record keeps in the names file: whole, checked against the record. */
static bool read_names(int names_fd, unsigned index, const char *names, char **ret_domain, char **ret_tenant) {
        char buf[NAMES_RECORD_SIZE], body[NAMES_RECORD_SIZE];
        RecordWords words;
        guint64 want;
        uint64_t slot;

        if (names_fd < 0 || !g_str_has_prefix(names, "side:") ||
            !g_ascii_string_to_unsigned(names + 5, 16, 0, G_MAXUINT64, &want, NULL) ||
            pread(names_fd, buf, sizeof(buf), (off_t) index * NAMES_RECORD_SIZE) != (ssize_t) sizeof(buf))
                return false;
        if (!open_record(buf, sizeof(buf), body) || rma_fnv1a(body, strlen(body)) != want)
                return false;   /* missing, garbage, or another lease's names */
        if (!split_words(body, &words) || !parse_u64(field(&words, "slot"), &slot) || slot != index ||
            !field(&words, "domain") || !field(&words, "tenant"))
                return false;
        *ret_domain = unescape_name(field(&words, "domain"));
        *ret_tenant = unescape_name(field(&words, "tenant"));
        return *ret_domain && *ret_tenant;
}

static bool parse_slot_record(char *body, unsigned index, int names_fd, RegistryRecord *rec) {
        RecordWords words;
        const char *state;
        uint64_t slot, v;

        if (!split_words(body, &words))
                return false;
        state = field(&words, "state");
        if (!parse_u64(field(&words, "slot"), &slot) || slot != index || !state)
                return false;
        rec->region_unknown = g_strcmp0(field(&words, "region"), "unknown") == 0 && g_str_equal(state, "held-elsewhere");
        if (!rec->region_unknown && !parse_region(field(&words, "region"), &rec->region_dev, &rec->region_ino))
                return false;
        /* No handle= at all: a record of an older broker, which had none. */
        if (field(&words, "handle") && !region_handle_parse(field(&words, "handle"), &rec->region_handle))
                return false;
        if (g_str_equal(state, "free")) {
                rec->state = SLOT_FREE;
                return true;
        }
        if (g_str_equal(state, "held-elsewhere")) {
                rec->state = SLOT_HELD_ELSEWHERE;
                return true;
        }
        rec->state = g_str_equal(state, "reserved") ? SLOT_RESERVED : g_str_equal(state, "leased") ? SLOT_LEASED
                                                                                                    : _SLOT_STATE_MAX;
        if (rec->state == _SLOT_STATE_MAX || !field(&words, "uuid") ||
            rma_uuid_canonicalize(field(&words, "uuid"), rec->uuid) < 0 || !field(&words, "domain") ||
            !field(&words, "tenant") || !parse_bounded(field(&words, "by"), UINT32_MAX - 1, &v))
                return false;
        rec->reserved_by = (uid_t) v;
        if (field(&words, "names") && !g_str_equal(field(&words, "names"), "-")) {
                if (!read_names(names_fd, index, field(&words, "names"), &rec->domain, &rec->tenant))
                        return false;
        } else {
                rec->domain = unescape_name(field(&words, "domain"));
                rec->tenant = unescape_name(field(&words, "tenant"));
        }
        /* PID_MAX_LIMIT: no kernel hands out a larger pid. */
        if (!rec->domain || !rec->tenant || !parse_bounded(field(&words, "pid"), 4194304, &v) ||
            !parse_u64(field(&words, "start"), &rec->pid_start) || !parse_u64(field(&words, "expires"), &rec->expires_realtime))
                return false;
        rec->expires_monotonic = monotonic_of(rec->expires_realtime);
        rec->pid = (pid_t) v;
        return rec->state != SLOT_LEASED || rec->pid > 0;
}

static bool all_zero(const char *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (p[i])
                        return false;
        return true;
}

/* The header record: 0 with its fields in *ret_words, or the problem in c->problem. */
static int read_header(RegistryContents *c, const char *path, const char *data, gsize len) {
        char header[RECORD_SIZE];
        bool opened = len >= RECORD_SIZE && open_record(data, RECORD_SIZE, header);
        RecordWords words;
        unsigned version = 0;

        /* A later format (a downgrade): whatever else it holds, its leases are not ours to
         * read or to rebuild. Judged by the first words alone, checksum or not. */
        if (len >= sizeof(REGISTRY_MAGIC) && memcmp(data, REGISTRY_MAGIC " v", strlen(REGISTRY_MAGIC) + 2) == 0 &&
            sscanf(data + strlen(REGISTRY_MAGIC) + 2, "%u", &version) == 1 && version > REGISTRY_VERSION) {
                c->newer_version = version;
                c->problem = g_strdup_printf("%s is in format v%u, written by a newer rma-brokerd; this one reads v%u",
                                             path, version, REGISTRY_VERSION);
                return -EPROTONOSUPPORT;
        }
        bool split = opened && split_words(header, &words);
        const char *boot = split ? field(&words, "boot") : NULL;
        uint64_t count = 0;

        if (!split || words.n < 2 || words.value[0] || !g_str_equal(words.key[0], REGISTRY_MAGIC) || words.value[1] ||
            !g_str_equal(words.key[1], "v1") || !field(&words, "backend") ||
            !parse_u64(field(&words, "size"), &c->region_size) || !parse_u64(field(&words, "count"), &count) ||
            count == 0 || count > RMA_MAX_COUNT || !boot) {
                c->problem = g_strdup_printf("%s has no valid header (%zu bytes, garbage or truncated)", path, (size_t) len);
                return -EINVAL;
        }
        if (!g_str_equal(boot, boot_id())) {
                c->problem = g_strdup_printf("%s is from another boot of this host; its processes are gone", path);
                c->other_boot = true;
                return -ESTALE;
        }
        c->header_valid = true;
        c->backend = g_strdup(field(&words, "backend"));
        c->count = (unsigned) count;
        return 0;
}

/* Every slot record after the header; a garbage or missing one is counted, not used. */
static void read_records(RegistryContents *c, const char *data, gsize len, int names_fd) {
        c->records = g_new0(RegistryRecord, c->count);
        for (unsigned i = 0; i < c->count; i++) {
                size_t off = (size_t) (i + 1) * RECORD_SIZE;
                char body[RECORD_SIZE];

                if (off + RECORD_SIZE > len) {
                        c->n_corrupt += c->count - i;   /* truncated: the rest is missing */
                        break;
                }
                if (all_zero(data + off, RECORD_SIZE))
                        continue;                        /* never written: free */
                if (open_record(data + off, RECORD_SIZE, body))
                        c->records[i].sum = rma_fnv1a(body, strlen(body));   /* before the parse splits it */
                else
                        body[0] = '\0';
                if (!body[0] || !parse_slot_record(body, i, names_fd, &c->records[i])) {
                        g_clear_pointer(&c->records[i].domain, g_free);
                        g_clear_pointer(&c->records[i].tenant, g_free);
                        c->n_corrupt++;
                        continue;
                }
                c->records[i].present = true;
        }
}

/* Slot i's sum in the sums file's text, if it has a well-formed line for it. */
static bool sum_line(const char *sums, size_t len, unsigned i, uint64_t *ret) {
        size_t off = (size_t) i * SUM_LINE_SIZE;
        char hex[SUM_LINE_SIZE];
        guint64 v;

        if (off + SUM_LINE_SIZE > len || sums[off + SUM_LINE_SIZE - 1] != '\n')
                return false;
        memcpy(hex, sums + off, SUM_LINE_SIZE - 1);
        hex[SUM_LINE_SIZE - 1] = '\0';
        if (!g_ascii_string_to_unsigned(hex, 16, 0, G_MAXUINT64, &v, NULL))
                return false;
        *ret = v;
        return true;
}

/* Every well-formed record whose checksum is not the one the broker last wrote for its
 * slot is stale: a copy restored over the registry (which keeps its inode, size and
 * header, and every checksum of its own), or a broker killed between the record and its
 * sum. Such a record proves nothing. No sums file at all: a registry of an older broker,
 * which kept none, read as before. */
static void check_sums(RegistryContents *c, const char *runtime_dir, const char *path) {
        g_autofree char *sums_path = g_build_filename(runtime_dir, REGISTRY_SUMS_FILE_NAME, NULL);
        g_autofree char *sums = NULL;
        size_t len = 0;
        int r = regular_file_read(sums_path, (size_t) RMA_MAX_COUNT * SUM_LINE_SIZE, &sums, &len);

        if (r == -ENOENT)
                return;
        for (unsigned i = 0; i < c->count; i++) {
                uint64_t want;
                if (!c->records[i].present || (r >= 0 && sum_line(sums, len, i, &want) && want == c->records[i].sum))
                        continue;
                c->records[i].stale = true;
                c->n_stale++;
        }
        if (c->n_stale > 0) {
                g_autofree char *before = g_steal_pointer(&c->problem);
                c->problem = g_strdup_printf("%s%s%s: %u of %u slot records are not the ones rma-brokerd last wrote "
                                             "(%s says otherwise: a backup restored over the registry?)",
                                             before ? before : "", before ? "; " : "", path, c->n_stale, c->count,
                                             sums_path);
        }
}

int registry_load(const char *runtime_dir, RegistryContents **ret) {
        g_autofree char *path = g_build_filename(runtime_dir, REGISTRY_FILE_NAME, NULL);
        g_autofree char *names_path = g_build_filename(runtime_dir, REGISTRY_NAMES_FILE_NAME, NULL);
        g_autoptr(RegistryContents) c = g_new0(RegistryContents, 1);
        g_autofree char *data = NULL;
        _cleanup_close_ int names_fd = -EBADF;
        size_t len = 0;
        int r;

        /* Never a blocking open: a FIFO put at the path would hang the start. */
        r = regular_file_read(path, (size_t) (RMA_MAX_COUNT + 1) * RECORD_SIZE, &data, &len);
        if (r == -ENOENT) {
                *ret = g_steal_pointer(&c);
                return 0;
        }
        c->present = true;
        if (r < 0) {
                /* Read as garbage: nothing of it is trusted, the leases are rebuilt. */
                c->problem = r == -EBADFD ? g_strdup_printf("%s is %s, not a regular file (it is replaced)", path,
                                                            regular_file_kind(path))
                                          : g_strdup_printf("cannot read %s: %s", path, g_strerror(-r));
                *ret = g_steal_pointer(&c);
                return 0;
        }
        if (read_header(c, path, data, len) >= 0) {
                names_fd = regular_file_open(names_path);
                if (names_fd == -EBADFD)
                        log_warning("%s is %s, not a regular file: the long names it should hold are lost; remove it",
                                    names_path, regular_file_kind(names_path));
                read_records(c, data, len, names_fd);
                if (c->n_corrupt > 0)
                        c->problem = g_strdup_printf("%s: %u of %u slot records are garbage or missing", path,
                                                     c->n_corrupt, c->count);
                check_sums(c, runtime_dir, path);
        }
        *ret = g_steal_pointer(&c);
        return 0;
}

RegistryContents *registry_contents_free(RegistryContents *c) {
        if (!c)
                return NULL;
        for (unsigned i = 0; c->records && i < c->count; i++) {
                g_free(c->records[i].domain);
                g_free(c->records[i].tenant);
        }
        g_free(c->records);
        g_free(c->backend);
        g_free(c->problem);
        g_free(c);
        return NULL;
}
