/*
 * Goes live with an FLV file through the StreamHub C API, in real time, while printing
 * the stream's chat; with -m it answers the first chat message from the audience.
 *
 *   broadcast [-c ws://host/chat -r ROOM -t TOKEN] [-m "a chat message"] [-l LOOPS]
 *             FILE.flv rtmp://host/app/key
 *
 * Exits 0 when every frame was sent and the session ended cleanly.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "streamhub.h"

struct broadcaster {
    atomic_int chat_seen;
    atomic_int reply_due; /* set by the callback, answered by the sending thread */
};

/* Runs on the session's streamhub-events thread. */
static void on_event(void *userdata, const streamhub_event *event) {
    struct broadcaster *b = userdata;
    switch (event->kind) {
    case STREAMHUB_EVENT_STATE_CHANGED:
        printf("state: %d %s\n", (int)event->state->state, event->text);
        break;
    case STREAMHUB_EVENT_CHAT_MESSAGE:
        printf("chat: %s: %s (seq %llu)\n", event->user_name, event->text,
               (unsigned long long)event->seq);
        /* The first message is the audience's: we send nothing before it. */
        if (atomic_fetch_add(&b->chat_seen, 1) == 0) atomic_store(&b->reply_due, 1);
        break;
    case STREAMHUB_EVENT_CHAT_SENT:
        printf("chat sent: %s as seq %llu\n", event->client_msg_id,
               (unsigned long long)event->seq);
        break;
    case STREAMHUB_EVENT_CHAT_SEND_FAILED:
        printf("chat not sent: %s: %s\n", event->client_msg_id, event->text);
        break;
    case STREAMHUB_EVENT_VIEWERS:
        printf("viewers: %llu\n", (unsigned long long)event->viewers);
        break;
    case STREAMHUB_EVENT_ERROR:
        printf("error: %s\n", event->text);
        break;
    default:
        break;
    }
    fflush(stdout);
}

static int fail(const char *what, streamhub_result result) {
    char message[512];
    streamhub_last_error_message(message, sizeof message, NULL);
    fprintf(stderr, "%s: %s: %s\n", what, streamhub_result_name(result), message);
    return 1;
}

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_until_us(int64_t deadline) {
    int64_t wait = deadline - now_us();
    if (wait > 0) {
        struct timespec ts = {wait / 1000000, (wait % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Sends `reply` once the events thread saw the audience's first message. */
static int reply_if_due(streamhub_session *session, struct broadcaster *b, const char *reply) {
    if (!reply || !atomic_exchange(&b->reply_due, 0)) return 0;
    char id[STREAMHUB_CLIENT_MSG_ID_SIZE];
    streamhub_result r = streamhub_session_send_chat(session, reply, id, sizeof id);
    return r == STREAMHUB_OK ? 0 : fail("chat", r);
}

/* Sends one pass over the file, times shifted by `offset_us`; returns the last pts. */
static int send_file(streamhub_session *session, const char *path, int64_t offset_us,
                     int64_t start_us, int64_t *last_pts_us, struct broadcaster *b,
                     const char *reply) {
    streamhub_flv_reader *reader = NULL;
    streamhub_result r = streamhub_flv_reader_open(path, &reader);
    if (r != STREAMHUB_OK) return fail("open", r);
    int status = 0;
    for (;;) {
        streamhub_flv_sample sample;
        bool end = false;
        r = streamhub_flv_reader_next(reader, &sample, &end);
        if (r != STREAMHUB_OK) { status = fail("read", r); break; }
        if (end) break;
        int64_t pts = sample.pts_us + offset_us, dts = sample.dts_us + offset_us;
        if (pts > *last_pts_us) *last_pts_us = pts;
        switch (sample.kind) {
        case STREAMHUB_SAMPLE_VIDEO_CONFIG:
            r = streamhub_session_set_video_config(session, sample.data, sample.len);
            break;
        case STREAMHUB_SAMPLE_AUDIO_CONFIG:
            r = streamhub_session_set_audio_config(session, sample.data, sample.len);
            break;
        case STREAMHUB_SAMPLE_VIDEO: {
            sleep_until_us(start_us + dts);
            streamhub_video_frame frame = {sample.data, sample.len, STREAMHUB_VIDEO_AVCC,
                                           sample.keyframe, pts, dts};
            r = streamhub_session_send_video(session, &frame);
            break;
        }
        case STREAMHUB_SAMPLE_AUDIO: {
            sleep_until_us(start_us + pts);
            streamhub_audio_frame frame = {sample.data, sample.len, STREAMHUB_AUDIO_AAC_RAW, pts};
            r = streamhub_session_send_audio(session, &frame);
            break;
        }
        }
        if (r != STREAMHUB_OK) { status = fail("send", r); break; }
        if ((status = reply_if_due(session, b, reply)) != 0) break;
    }
    streamhub_flv_reader_free(reader);
    return status;
}

int main(int argc, char **argv) {
    const char *chat_url = NULL, *room = NULL, *token = NULL, *message = NULL;
    int loops = 1, opt;
    while ((opt = getopt(argc, argv, "c:r:t:m:l:")) != -1) {
        switch (opt) {
        case 'c': chat_url = optarg; break;
        case 'r': room = optarg; break;
        case 't': token = optarg; break;
        case 'm': message = optarg; break;
        case 'l': loops = atoi(optarg); break;
        default: return 2;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "usage: %s [-c CHAT_URL -r ROOM -t TOKEN] [-m TEXT] [-l LOOPS] FILE.flv RTMP_URL\n", argv[0]);
        return 2;
    }
    struct broadcaster b = {0};
    streamhub_session_config config;
    streamhub_session_config_defaults(&config, sizeof config);
    config.url = argv[optind + 1];
    config.chat_url = chat_url;
    config.chat_room = room;
    config.chat_token = token;
    config.on_event = on_event;
    config.userdata = &b;

    streamhub_session *session = NULL;
    streamhub_result r = streamhub_session_broadcast(&config, &session);
    if (r != STREAMHUB_OK) return fail("broadcast", r);

    streamhub_state_info state = { .struct_size = sizeof state };
    r = streamhub_session_wait_live(session, 10000, &state);
    int status = 0;
    if (r != STREAMHUB_OK || state.state != STREAMHUB_STATE_LIVE) {
        fprintf(stderr, "not live (state %d)\n", (int)state.state);
        status = 1;
    }
    int64_t start = now_us(), offset = 0;
    for (int pass = 0; status == 0 && pass < loops; pass++) {
        int64_t last = offset;
        status = send_file(session, argv[optind], offset, start, &last, &b, message);
        offset = last + 33333;
    }
    streamhub_stats stats = { .struct_size = sizeof stats };
    r = streamhub_session_stop(session, &stats);
    if (r != STREAMHUB_OK) status = fail("stop", r);
    printf("sent video_frames=%llu audio_frames=%llu dropped=%llu chat_received=%d\n",
           (unsigned long long)stats.video_frames, (unsigned long long)stats.audio_frames,
           (unsigned long long)stats.frames_dropped, atomic_load(&b.chat_seen));
    streamhub_session_free(session);
    streamhub_shutdown(5000);
    return status;
}
