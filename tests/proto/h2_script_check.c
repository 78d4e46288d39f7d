/* h2_script_check.c - the output side of the scripted HTTP/2 client
 * (h2_script.h): parsing the server's frames, the RFC 9113 oracle, the
 * drain and run loops, the views and the assertions. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2_script.h"
#include "h2_script_internal.h"

/* --- Output parsing and the RFC oracle ----------------------------------------------------- */

static bool valid_client_sid(const h2s *s, uint32_t sid)
{
    return sid != 0 && (sid & 1) && sid <= s->max_client_sid;
}

static void check_response_fields(h2s *s, uint32_t sid, const h2s_field *f, uint32_t n,
                                  bool trailers)
{
    bool regular_seen = false;
    for (uint32_t i = 0; i < n; i++) {
        const h2s_field *x = &f[i];
        if (x->name_len && x->name[0] == ':') {
            if (trailers)
                violation(s, "stream %u: pseudo-header %s in trailers (RFC 9113 §8.1)", sid,
                          x->name);
            else if (strcmp(x->name, ":status") != 0)
                violation(s, "stream %u: pseudo-header %s in a response (§8.3.2)", sid, x->name);
            else if (regular_seen || i != 0)
                violation(s, "stream %u: :status not first (§8.3)", sid);
            continue;
        }
        regular_seen = true;
        for (uint32_t k = 0; k < x->name_len; k++)
            if (x->name[k] >= 'A' && x->name[k] <= 'Z')
                violation(s, "stream %u: uppercase field name %s (§8.2.1)", sid, x->name);
        static const char *const conn_specific[] = {"connection", "proxy-connection", "keep-alive",
                                                    "transfer-encoding", "upgrade"};
        for (size_t k = 0; k < 5; k++)
            if (strcmp(x->name, conn_specific[k]) == 0)
                violation(s, "stream %u: connection-specific field %s (§8.2.2)", sid, x->name);
    }
}

static void finish_block(h2s *s)
{
    h2s_frame *hf = &s->frames[s->blk_frame];
    s->blk_frame = SIZE_MAX;
    uint32_t sid = hf->hdr.stream_id;
    hpack_sink sk;
    memset(&sk, 0, sizeof sk);
    sk.fields = s->sink_fields;
    sk.fields_cap = SINK_FIELDS;
    sk.buf = s->sink_buf;
    sk.buf_cap = SINK_BUF;
    sk.soft_list_size = SINK_BUF;
    sk.hard_list_size = SINK_BUF;
    sk.soft_fields = SINK_FIELDS;
    sk.hard_fields = SINK_FIELDS;
    h2_rv rv = hpack_decode_block(&s->dec, s->blk, s->blk_len, &sk);
    hf->has_block = true;
    hf->block_len = (uint32_t)s->blk_len;
    hf->status = -1;
    s->blk_len = 0;
    if (rv != H2_OK) {
        violation(s, "stream %u: server field block does not decode: %s (RFC 7541; §4.3)", sid,
                  h2_rv_name(rv));
        return;
    }
    hf->fields = copy_fields(sk.fields, sk.count);
    hf->nfields = sk.count;
    h2s_stream *st = get_st(s, sid, true);
    bool es = hf->hdr.flags & H2_FLAG_END_STREAM;
    if (st->status < 200) {
        check_response_fields(s, sid, hf->fields, hf->nfields, false);
        const char *sv = h2s_field_get(hf->fields, hf->nfields, ":status");
        if (!sv || strlen(sv) != 3 || sv[0] < '1' || sv[0] > '5') {
            violation(s, "stream %u: response without a valid :status (§8.3.2)", sid);
            return;
        }
        int status = atoi(sv);
        hf->status = status;
        if (status < 200) {
            if (es)
                violation(s, "stream %u: %d with END_STREAM (§8.1)", sid, status);
            if (status == 101)
                violation(s, "stream %u: 101 in HTTP/2 (§8.6)", sid);
            if (st->ninfo < 8)
                st->info[st->ninfo++] = status;
        } else {
            st->status = status;
            st->hdrs = copy_fields(sk.fields, sk.count);
            st->nhdrs = sk.count;
        }
    } else {
        if (!es)
            violation(s, "stream %u: trailers without END_STREAM (§8.1)", sid);
        check_response_fields(s, sid, hf->fields, hf->nfields, true);
        if (!st->has_trailers) {
            st->trailers = copy_fields(sk.fields, sk.count);
            st->ntrailers = sk.count;
            st->has_trailers = true;
        }
    }
    if (es)
        st->ended = true;
}

static void check_content_length(h2s *s, h2s_stream *st)
{
    const char *cl = h2s_field_get(st->hdrs, st->nhdrs, "content-length");
    if (!cl || st->status == 204 || st->status == 304 || st->head_req)
        return;
    unsigned long long want = strtoull(cl, NULL, 10);
    if (want != st->body_len)
        violation(s, "stream %u: content-length %llu but %zu body bytes (§8.1.1)", st->id, want,
                  st->body_len);
}

static void on_frame(h2s *s, h2s_frame *fr)
{
    const h2_frame_hdr *h = &fr->hdr;
    uint32_t sid = h->stream_id;
    const char *tn = ftype_name(h->type);

    if (!s->saw_first_frame) {
        s->saw_first_frame = true;
        if (h->type != H2_FT_SETTINGS || (h->flags & H2_FLAG_ACK))
            violation(s, "first server frame is %s, not SETTINGS (RFC 9113 §3.4)", tn);
    }
    uint32_t maxf = s->cl_max_frame < s->limits.max_send_frame_size ? s->cl_max_frame
                                                                    : s->limits.max_send_frame_size;
    if (h->length > maxf)
        violation(s, "%s frame of %u bytes, peer/limit allows %u (§4.2)", tn, h->length, maxf);
    if (s->error_goaway)
        violation(s, "%s frame after a GOAWAY with an error code (§5.4.1)", tn);
    if (s->blk_frame != SIZE_MAX &&
        (h->type != H2_FT_CONTINUATION || sid != s->frames[s->blk_frame].hdr.stream_id))
        violation(s, "%s on stream %u inside a field block (§6.10)", tn, sid);

    if (h2_frame_type_known(h->type)) {
        h2_fault f = h2_frame_decode(h, fr->payload, &fr->f);
        if (!h2_fault_ok(f)) {
            violation(s, "server %s frame does not decode: %s (%s)", tn, h2_code_name(f.code),
                      f.reason ? f.reason : "");
            return;
        }
    }
    h2s_stream *st = NULL;
    if (sid && h->type <= H2_FT_CONTINUATION && h->type != H2_FT_PRIORITY) {
        if (!valid_client_sid(s, sid))
            violation(s, "%s on stream %u, which the client never opened (§5.1)", tn, sid);
        st = get_st(s, sid, true);
        if (st->nrst && h->type != H2_FT_RST_STREAM)
            violation(s, "%s on stream %u after the server's RST_STREAM (§5.4.2)", tn, sid);
        if (st->ended && (h->type == H2_FT_DATA || h->type == H2_FT_HEADERS))
            violation(s, "%s on stream %u after END_STREAM (§5.1)", tn, sid);
    }

    switch (h->type) {
    case H2_FT_DATA: {
        if (!st)
            break;
        if (st->status < 200)
            violation(s, "DATA on stream %u before a final response head (§8.1)", sid);
        uint64_t len = h->length;
        if (len) {
            uint64_t conn_win = H2_DEFAULT_WINDOW + s->s_conn_wu_from_client;
            uint64_t st_win = (uint64_t)s->cl_initial_window + st->wu_from_client;
            if (s->s_conn_flow + len > conn_win)
                violation(s, "DATA on stream %u exceeds the connection window by %llu (§6.9.1)",
                          sid, (unsigned long long)(s->s_conn_flow + len - conn_win));
            if ((int64_t)(st->s_flow + len) > (int64_t)st_win)
                violation(s, "DATA on stream %u exceeds the stream window by %lld (§6.9.1)", sid,
                          (long long)(st->s_flow + len) - (long long)st_win);
        }
        s->s_conn_flow += len;
        st->s_flow += len;
        st->data_frames++;
        const h2_data *d = &fr->f.u.data;
        if (d->len) {
            GROW(st->dmap, st->ndmap, st->dmap_cap, st->ndmap + 1);
            st->dmap[st->ndmap++] =
                (h2s_dmap){st->body_len, fr->out_off + 9 + (size_t)(d->data - fr->payload), d->len};
            GROW(st->body, st->body_len, st->body_cap, st->body_len + d->len);
            memcpy(st->body + st->body_len, d->data, d->len);
            st->body_len += d->len;
        }
        if (h->flags & H2_FLAG_END_STREAM) {
            st->ended = true;
            check_content_length(s, st);
        }
        break;
    }
    case H2_FT_HEADERS:
    case H2_FT_CONTINUATION: {
        if (h->type == H2_FT_CONTINUATION && s->blk_frame == SIZE_MAX) {
            violation(s, "CONTINUATION on stream %u without HEADERS (§6.10)", sid);
            break;
        }
        const uint8_t *frag =
            h->type == H2_FT_HEADERS ? fr->f.u.headers.block : fr->f.u.continuation.block;
        uint32_t flen =
            h->type == H2_FT_HEADERS ? fr->f.u.headers.block_len : fr->f.u.continuation.block_len;
        if (h->type == H2_FT_HEADERS) {
            s->blk_frame = (size_t)(fr - s->frames);
            s->blk_len = 0;
        }
        GROW(s->blk, s->blk_len, s->blk_cap, s->blk_len + flen);
        if (flen)
            memcpy(s->blk + s->blk_len, frag, flen);
        s->blk_len += flen;
        if (h->flags & H2_FLAG_END_HEADERS) {
            finish_block(s);
            if (st && st->ended && st->status >= 200)
                check_content_length(s, st);
        }
        break;
    }
    case H2_FT_RST_STREAM:
        if (!st)
            break;
        if (st->nrst == 0)
            st->rst_code = fr->f.u.rst_code;
        st->nrst++;
        break;
    case H2_FT_SETTINGS:
        if (h->flags & H2_FLAG_ACK) {
            if (s->server_acks_seen >= s->client_settings_consumed)
                violation(s, "SETTINGS ACK #%u but only %u client SETTINGS consumed (§6.5.3)",
                          s->server_acks_seen + 1, s->client_settings_consumed);
            else if (s->server_acks_seen < s->nclient_hts &&
                     s->client_hts[s->server_acks_seen] >= 0)
                hpack_decoder_set_settings_max(&s->dec,
                                               (uint32_t)s->client_hts[s->server_acks_seen]);
            s->server_acks_seen++;
        } else {
            s->server_settings_seen++;
            for (uint32_t i = 0; i < fr->f.u.settings.n; i++) {
                h2_setting e = h2_settings_get(fr->f.u.settings.entries, i);
                if (e.id == H2_SET_ENABLE_PUSH && e.value != 0)
                    violation(s, "server SETTINGS_ENABLE_PUSH=%u (§6.5.2)", e.value);
            }
        }
        break;
    case H2_FT_PUSH_PROMISE: violation(s, "server sent PUSH_PROMISE"); break;
    case H2_FT_PING:
        if (h->flags & H2_FLAG_ACK) {
            bool found = false;
            for (size_t i = 0; i < s->pings_consumed && !found; i++)
                if (!s->ping_acked[i] && memcmp(s->pings[i], fr->f.u.ping, 8) == 0) {
                    s->ping_acked[i] = true;
                    found = true;
                }
            if (!found)
                violation(s, "PING ACK that echoes no PING the client sent (§6.7)");
        }
        break;
    case H2_FT_GOAWAY: {
        uint32_t last = fr->f.u.goaway.last_stream_id;
        if (s->goaway_last_min >= 0 && (int64_t)last > s->goaway_last_min)
            violation(s, "GOAWAY last-stream-id grew from %lld to %u (§6.8)",
                      (long long)s->goaway_last_min, last);
        if (s->goaway_last_min < 0 || (int64_t)last < s->goaway_last_min)
            s->goaway_last_min = last;
        if (fr->f.u.goaway.code != H2_NO_ERROR)
            s->error_goaway = true;
        break;
    }
    case H2_FT_WINDOW_UPDATE:
        if (sid == 0) {
            s->c_conn_wu_in += fr->f.u.window_increment;
            s->s_conn_wu_to_client += fr->f.u.window_increment;
            /* The window the client now has: never past 2^31-1 (§6.9.1), and,
             * counting only DATA the engine has read, never past the
             * connection window we configured (h2_conn credits at most what
             * it received). */
            int64_t win = (int64_t)H2_DEFAULT_WINDOW + (int64_t)s->c_conn_wu_in - s->c_conn_flow;
            if (win > (int64_t)H2_MAX_WINDOW)
                violation(s,
                          "connection WINDOW_UPDATE makes the client's window %lld > 2^31-1 "
                          "(§6.9.1)",
                          (long long)win);
            int64_t granted =
                (int64_t)H2_DEFAULT_WINDOW + (int64_t)s->c_conn_wu_in - (int64_t)s->c_conn_flow_fed;
            if (granted > (int64_t)s->limits.connection_window)
                violation(s,
                          "connection WINDOW_UPDATEs grant %lld bytes, more than the "
                          "configured connection window %u (credit given twice?)",
                          (long long)granted, s->limits.connection_window);
        } else if (st) {
            st->wu_to_client += fr->f.u.window_increment;
            int64_t win =
                (int64_t)s->srv_initial_window + (int64_t)st->wu_to_client - (int64_t)st->c_flow;
            if (win > (int64_t)H2_MAX_WINDOW)
                violation(s, "WINDOW_UPDATE makes stream %u's window %lld > 2^31-1 (§6.9.1)", sid,
                          (long long)win);
        }
        break;
    default: break;
    }
}

void parse_output(h2s *s)
{
    while (s->out_len - s->out_parsed >= 9) {
        h2_frame_hdr h;
        h2_frame_hdr_parse(s->out + s->out_parsed, &h);
        if (s->out_len - s->out_parsed < 9 + (size_t)h.length)
            break;
        GROW(s->frames, s->nframes, s->frames_cap, s->nframes + 1);
        h2s_frame *fr = &s->frames[s->nframes++];
        memset(fr, 0, sizeof *fr);
        fr->hdr = h;
        fr->out_off = s->out_parsed;
        fr->status = -1;
        fr->payload = xrealloc(NULL, h.length);
        if (h.length)
            memcpy(fr->payload, s->out + s->out_parsed + 9, h.length);
        s->out_parsed += 9 + (size_t)h.length;
        on_frame(s, fr);
    }
}

static void out_append(h2s *s, const void *p, size_t n)
{
    GROW(s->out, s->out_len, s->out_cap, s->out_len + n);
    memcpy(s->out + s->out_len, p, n);
    s->out_len += n;
}

static const size_t send_caps[] = {1, 7, 100, 16393, 65536};
static const size_t iov_caps[] = {9, 1000, 17, 65536, 3};

void h2s_drain(h2s *s)
{
    if (!s->c)
        return;
    size_t start = s->out_len;
    static uint8_t buf[65536];
    uint8_t *tail = NULL; /* previously prepared, uncommitted bytes */
    size_t tail_len = 0;
    for (uint32_t it = 0;; it++) {
        if (s->out_len - start > MAX_OUTPUT) {
            violation(s, "runaway output: more than %u bytes in one drain", MAX_OUTPUT);
            break;
        }
        if (s->mode == H2S_IOV) {
            struct iovec iov[3];
            memset(iov, 0, sizeof iov);
            iov[2].iov_len = 0xdead; /* must stay untouched */
            size_t maxb = iov_caps[it % 5];
            size_t n = h2_conn_out_prepare(s->c, iov, 2, maxb);
            if (n == 0)
                break;
            if (n > 2 || iov[2].iov_len != 0xdead) {
                violation(s, "h2_conn_out_prepare filled %zu iovecs of 2", n);
                break;
            }
            size_t total = 0;
            for (size_t i = 0; i < n; i++) {
                if (iov[i].iov_len == 0)
                    violation(s, "h2_conn_out_prepare returned an empty iovec");
                total += iov[i].iov_len;
            }
            /* Flatten what was prepared. */
            uint8_t *flat = xrealloc(NULL, total);
            size_t k = 0;
            for (size_t i = 0; i < n; i++) {
                memcpy(flat + k, iov[i].iov_base, iov[i].iov_len);
                k += iov[i].iov_len;
            }
            /* A later prepare starts again at the first unwritten byte. */
            size_t overlap = tail_len < total ? tail_len : total;
            if (overlap && memcmp(tail, flat, overlap) != 0)
                violation(s, "prepare after a partial commit does not resume at the first "
                             "uncommitted byte");
            /* Commit all, half, or one byte, in turn. */
            size_t commit = total;
            if (it % 3 == 1)
                commit = total / 2 ? total / 2 : 1;
            else if (it % 3 == 2)
                commit = 1;
            out_append(s, flat, commit);
            free(tail);
            tail_len = total - commit;
            tail = xrealloc(NULL, tail_len);
            if (tail_len)
                memcpy(tail, flat + commit, tail_len);
            free(flat);
            s->in_commit = true;
            h2_conn_out_commit(s->c, commit, s->now);
            s->in_commit = false;
        } else {
            size_t cap = s->mode == H2S_BYTEWISE ? send_caps[it % 5] : sizeof buf;
            s->in_commit = true;
            size_t n = h2_conn_send(s->c, buf, cap, s->now);
            s->in_commit = false;
            if (n > cap) {
                violation(s, "h2_conn_send wrote %zu bytes into %zu", n, cap);
                break;
            }
            if (n == 0)
                break;
            out_append(s, buf, n);
        }
        parse_output(s);
    }
    free(tail);
    if (tail_len)
        violation(s, "prepare returned nothing while %zu prepared bytes were uncommitted",
                  tail_len);
    parse_output(s);
    if (h2_conn_want_write(s->c))
        violation(s, "h2_conn_want_write() is true but no output comes out");
}

size_t h2s_drain_upto(h2s *s, size_t cap)
{
    uint8_t *buf = xrealloc(NULL, cap ? cap : 1);
    s->in_commit = true;
    size_t n = h2_conn_send(s->c, buf, cap, s->now);
    s->in_commit = false;
    if (n > cap)
        violation(s, "h2_conn_send wrote %zu bytes into %zu", n, cap);
    else
        out_append(s, buf, n);
    free(buf);
    parse_output(s);
    return n;
}

h2_rv h2s_run(h2s *s)
{
    h2_rv rv = h2s_feed(s);
    h2s_drain(s);
    return rv;
}

void h2s_handshake_with(h2s *s, const h2_setting *set, size_t n)
{
    if (!s->c)
        h2s_start(s, NULL, NULL);
    h2s_preface(s);
    h2s_settings(s, set, n);
    h2_rv rv = h2s_run(s);
    cr_assert(rv == H2_OK, "[%s] handshake: preface + SETTINGS: %s (%s)", s->mode_name,
              h2_rv_name(rv), h2_conn_fault(s->c).reason ? h2_conn_fault(s->c).reason : "");
    cr_assert(s->nframes > 0 && s->frames[0].hdr.type == H2_FT_SETTINGS,
              "[%s] handshake: no server SETTINGS", s->mode_name);
    h2s_settings_ack(s);
    rv = h2s_run(s);
    cr_assert(rv == H2_OK, "[%s] handshake: SETTINGS ACK: %s", s->mode_name, h2_rv_name(rv));
    cr_assert(s->server_acks_seen == 1, "[%s] handshake: server sent %u SETTINGS ACKs, want 1",
              s->mode_name, s->server_acks_seen);
}

void h2s_handshake(h2s *s)
{
    h2s_handshake_with(s, NULL, 0);
}

h2_rv h2s_tick(h2s *s)
{
    h2_rv rv = h2_conn_tick(s->c, s->now);
    if (rv != H2_OK && s->first_err == H2_OK) {
        s->first_err = rv;
        s->err_pos = s->fed;
    }
    return rv;
}

/* --- Views --------------------------------------------------------------------------------- */

static bool frame_match(const h2s_frame *f, uint8_t type, uint32_t sid)
{
    return f->hdr.type == type && (sid == H2S_ANY || f->hdr.stream_id == sid);
}

const h2s_frame *h2s_find(const h2s *s, uint8_t type, uint32_t sid)
{
    for (size_t i = 0; i < s->nframes; i++)
        if (frame_match(&s->frames[i], type, sid))
            return &s->frames[i];
    return NULL;
}

const h2s_frame *h2s_last(const h2s *s, uint8_t type, uint32_t sid)
{
    for (size_t i = s->nframes; i-- > 0;)
        if (frame_match(&s->frames[i], type, sid))
            return &s->frames[i];
    return NULL;
}

size_t h2s_count(const h2s *s, uint8_t type, uint32_t sid)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nframes; i++)
        n += frame_match(&s->frames[i], type, sid);
    return n;
}

size_t h2s_index_of(const h2s *s, const h2s_frame *f)
{
    return f ? (size_t)(f - s->frames) : SIZE_MAX;
}

int64_t h2s_goaway_code(const h2s *s)
{
    const h2s_frame *f = h2s_last(s, H2_FT_GOAWAY, 0);
    return f ? (int64_t)f->f.u.goaway.code : -1;
}

int64_t h2s_goaway_last_id(const h2s *s)
{
    const h2s_frame *f = h2s_last(s, H2_FT_GOAWAY, 0);
    return f ? (int64_t)f->f.u.goaway.last_stream_id : -1;
}

int64_t h2s_rst_code(const h2s *s, uint32_t sid)
{
    const h2s_frame *f = h2s_find(s, H2_FT_RST_STREAM, sid);
    return f ? (int64_t)f->f.u.rst_code : -1;
}

uint64_t h2s_wu_total(const h2s *s, uint32_t sid)
{
    uint64_t t = 0;
    for (size_t i = 0; i < s->nframes; i++)
        if (frame_match(&s->frames[i], H2_FT_WINDOW_UPDATE, sid))
            t += s->frames[i].f.u.window_increment;
    return t;
}

int64_t h2s_setting(const h2s *s, uint16_t id)
{
    const h2s_frame *f = server_settings_k(s, 0);
    int64_t v = -1;
    if (!f)
        return -1;
    for (uint32_t i = 0; i < f->f.u.settings.n; i++) {
        h2_setting e = h2_settings_get(f->f.u.settings.entries, i);
        if (e.id == id)
            v = e.value;
    }
    return v;
}

int h2s_status(const h2s *s, uint32_t sid)
{
    h2s_stream *st = h2s_st(s, sid);
    return st ? st->status : -1;
}

const uint8_t *h2s_body(const h2s *s, uint32_t sid, size_t *len)
{
    h2s_stream *st = h2s_st(s, sid);
    *len = st ? st->body_len : 0;
    return st ? st->body : NULL;
}

const char *h2s_resp_field(const h2s *s, uint32_t sid, const char *name)
{
    h2s_stream *st = h2s_st(s, sid);
    return st ? h2s_field_get(st->hdrs, st->nhdrs, name) : NULL;
}

int64_t h2s_client_conn_window(const h2s *s)
{
    return (int64_t)H2_DEFAULT_WINDOW + (int64_t)s->c_conn_wu_in - s->c_conn_flow;
}

int64_t h2s_client_stream_window(const h2s *s, uint32_t sid)
{
    h2s_stream *st = h2s_st(s, sid);
    int64_t w = s->srv_initial_window;
    if (st)
        w += (int64_t)st->wu_to_client - (int64_t)st->c_flow;
    return w;
}

const h2s_ev *h2s_ev_find(const h2s *s, h2_event_type type, uint32_t sid)
{
    for (size_t i = 0; i < s->nev; i++)
        if (s->evs[i].type == type && (sid == H2S_ANY || s->evs[i].stream_id == sid))
            return &s->evs[i];
    return NULL;
}

size_t h2s_ev_count(const h2s *s, h2_event_type type, uint32_t sid)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nev; i++)
        n += s->evs[i].type == type && (sid == H2S_ANY || s->evs[i].stream_id == sid);
    return n;
}

const h2s_ev *h2s_req(const h2s *s, uint32_t sid)
{
    return h2s_ev_find(s, H2_EV_REQUEST, sid);
}

const uint8_t *h2s_req_body(const h2s *s, uint32_t sid, size_t *len)
{
    h2s_stream *st = h2s_st(s, sid);
    *len = st ? st->req_body_len : 0;
    return st ? st->req_body : NULL;
}

/* --- Assertions ------------------------------------------------------------------------------- */

static uint64_t g_alive_seq;

void h2s_expect_conn_error_(h2s *s, uint32_t code, int64_t code2, const char *file, int line)
{
    h2s_drain(s);
    bool code_ok;
    cr_expect(s->first_err == H2_E_PROTO,
              "%s:%d [%s] want a connection error %s: the engine returned %s", file, line,
              s->mode_name, h2_code_name(code), h2_rv_name(s->first_err));
    h2_fault f = h2_conn_fault(s->c);
    code_ok = f.code == code || (code2 >= 0 && (int64_t)f.code == code2);
    cr_expect(f.scope == H2_SCOPE_CONN && code_ok,
              "%s:%d [%s] h2_conn_fault: scope %d code %s (%s), want connection scope %s", file,
              line, s->mode_name, (int)f.scope, h2_code_name(f.code), f.reason ? f.reason : "",
              h2_code_name(code));
    const h2s_frame *g = h2s_last(s, H2_FT_GOAWAY, 0);
    /* cr_expect, not cr_assert: an abort here would skip h2s_fini (leaking
     * the h2s) and every later sub-case of the test. */
    cr_expect(g != NULL, "%s:%d [%s] no GOAWAY sent (want %s; fault %s: %s)", file, line,
              s->mode_name, h2_code_name(code), h2_code_name(f.code), f.reason ? f.reason : "");
    if (g) {
        uint32_t gc = g->f.u.goaway.code;
        code_ok = gc == code || (code2 >= 0 && (int64_t)gc == code2);
        cr_expect(code_ok, "%s:%d [%s] GOAWAY code %s, want %s%s%s", file, line, s->mode_name,
                  h2_code_name(gc), h2_code_name(code), code2 >= 0 ? " or " : "",
                  code2 >= 0 ? h2_code_name((uint32_t)code2) : "");
        cr_expect(h2s_index_of(s, g) == s->nframes - 1, "%s:%d [%s] frames follow the error GOAWAY",
                  file, line, s->mode_name);
    }
    if (s->first_err != H2_E_PROTO)
        return; /* the connection is alive: feeding it a PING below would confuse the oracle */
    cr_expect(h2_conn_is_done(s->c), "%s:%d [%s] h2_conn_is_done() false after a connection error",
              file, line, s->mode_name);
    cr_expect(!h2_conn_want_read(s->c),
              "%s:%d [%s] h2_conn_want_read() true after a connection error", file, line,
              s->mode_name);
    uint8_t ping[17];
    put24(ping, 8);
    ping[3] = H2_FT_PING;
    ping[4] = 0;
    put32(ping + 5, 0);
    memset(ping + 9, 0x5a, 8);
    size_t consumed = 0;
    h2_event ev;
    memset(&ev, 0, sizeof ev);
    h2_rv rv = h2_conn_recv(s->c, ping, sizeof ping, s->now, &consumed, &ev);
    cr_expect(rv == H2_E_CLOSED, "%s:%d [%s] recv after a connection error: %s, want H2_E_CLOSED",
              file, line, s->mode_name, h2_rv_name(rv));
}

void h2s_expect_alive_(h2s *s, const char *file, int line)
{
    uint64_t n = 0xa11fe00000000000ull + ++g_alive_seq;
    uint8_t op[8];
    for (int i = 7; i >= 0; i--)
        op[i] = (uint8_t)(n >> (8 * (7 - i)));
    h2s_ping(s, false, op);
    h2_rv rv = h2s_run(s);
    cr_expect(rv == H2_OK && s->first_err == H2_OK,
              "%s:%d [%s] connection not alive: %s (fault %s: %s)", file, line, s->mode_name,
              h2_rv_name(s->first_err != H2_OK ? s->first_err : rv),
              h2_code_name(h2_conn_fault(s->c).code),
              h2_conn_fault(s->c).reason ? h2_conn_fault(s->c).reason : "");
    bool acked = false;
    for (size_t i = 0; i < s->nframes; i++) {
        const h2s_frame *f = &s->frames[i];
        if (f->hdr.type == H2_FT_PING && (f->hdr.flags & H2_FLAG_ACK) &&
            memcmp(f->f.u.ping, op, 8) == 0)
            acked = true;
    }
    cr_expect(acked, "%s:%d [%s] connection not alive: PING not acknowledged", file, line,
              s->mode_name);
    const h2s_frame *g = h2s_last(s, H2_FT_GOAWAY, 0);
    cr_expect(g == NULL || g->f.u.goaway.code == H2_NO_ERROR, "%s:%d [%s] unexpected GOAWAY %s",
              file, line, s->mode_name, g ? h2_code_name(g->f.u.goaway.code) : "");
}

void h2s_expect_stream_error_(h2s *s, uint32_t sid, uint32_t code, const char *file, int line)
{
    h2s_drain(s);
    cr_expect(s->first_err == H2_OK,
              "%s:%d [%s] want a stream error %s on %u, got a connection error %s (GOAWAY %s: "
              "%s)",
              file, line, s->mode_name, h2_code_name(code), sid, h2_rv_name(s->first_err),
              h2_code_name(h2_conn_fault(s->c).code),
              h2_conn_fault(s->c).reason ? h2_conn_fault(s->c).reason : "");
    h2s_stream *st = h2s_st(s, sid);
    cr_expect(st && st->nrst >= 1, "%s:%d [%s] no RST_STREAM on stream %u (want %s)", file, line,
              s->mode_name, sid, h2_code_name(code));
    if (st && st->nrst >= 1) {
        cr_expect(st->rst_code == code, "%s:%d [%s] RST_STREAM on %u has %s, want %s", file, line,
                  s->mode_name, sid, h2_code_name(st->rst_code), h2_code_name(code));
        cr_expect(st->nrst == 1, "%s:%d [%s] %u RST_STREAMs on stream %u, want 1", file, line,
                  s->mode_name, st->nrst, sid);
    }
    if (s->first_err == H2_OK)
        h2s_expect_alive_(s, file, line);
}

void h2s_expect_error_any_(h2s *s, uint32_t sid, uint32_t code, const char *file, int line)
{
    h2s_drain(s);
    if (s->first_err != H2_OK)
        h2s_expect_conn_error_(s, code, -1, file, line);
    else
        h2s_expect_stream_error_(s, sid, code, file, line);
}
