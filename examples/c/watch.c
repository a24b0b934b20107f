/*
 * Watches a stream over WHEP through the StreamHub C API, counting frames (and writing
 * the H.264 to a file if asked), while printing the stream's chat.
 *
 *   watch [-c ws://host/chat -r ROOM -t TOKEN] [-m "a chat message"]
 *         [-n VIDEO_FRAMES] [-s SECONDS] [-o out.h264] http://host/whep/NAME
 *
 * Stops after VIDEO_FRAMES video frames (default 150) or SECONDS (default 30); exits 0
 * when enough frames arrived. With -m it says hello once someone else is in the room.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "streamhub.h"

struct viewer {
    atomic_ullong video_frames;
    atomic_ullong audio_frames;
    atomic_int others_present; /* the room's audience counts someone besides us */
    atomic_int chat_seen;
    unsigned long long wanted;
    FILE *out; /* written on the frames thread only */
};

/* Runs on the session's streamhub-frames thread. */
static void on_frame(void *userdata, const streamhub_frame *frame) {
    struct viewer *v = userdata;
    if (frame->kind == STREAMHUB_MEDIA_VIDEO) {
        unsigned long long n = atomic_load(&v->video_frames);
        if (n >= v->wanted) return;
        if (v->out && frame->codec == STREAMHUB_CODEC_H264) fwrite(frame->data, 1, frame->len, v->out);
        atomic_store(&v->video_frames, n + 1);
    } else {
        atomic_fetch_add(&v->audio_frames, 1);
    }
}

/* Runs on the session's streamhub-events thread. */
static void on_event(void *userdata, const streamhub_event *event) {
    struct viewer *v = userdata;
    switch (event->kind) {
    case STREAMHUB_EVENT_STATE_CHANGED:
        printf("state: %d %s\n", (int)event->state->state, event->text);
        break;
    case STREAMHUB_EVENT_CHAT_JOINED:
    case STREAMHUB_EVENT_VIEWERS:
        /* We watch with our chat token, so the hub counts us once, chat and video. */
        if (event->viewers >= 2) atomic_store(&v->others_present, 1);
        break;
    case STREAMHUB_EVENT_CHAT_MESSAGE:
        printf("chat: %s: %s (seq %llu)\n", event->user_name, event->text,
               (unsigned long long)event->seq);
        atomic_fetch_add(&v->chat_seen, 1);
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

int main(int argc, char **argv) {
    const char *chat_url = NULL, *room = NULL, *token = NULL, *message = NULL, *out = NULL;
    long wanted = 150, seconds = 30;
    int opt;
    while ((opt = getopt(argc, argv, "c:r:t:m:n:s:o:")) != -1) {
        switch (opt) {
        case 'c': chat_url = optarg; break;
        case 'r': room = optarg; break;
        case 't': token = optarg; break;
        case 'm': message = optarg; break;
        case 'n': wanted = atol(optarg); break;
        case 's': seconds = atol(optarg); break;
        case 'o': out = optarg; break;
        default: return 2;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "usage: %s [-c CHAT_URL -r ROOM -t TOKEN] [-m TEXT] [-n FRAMES] [-s SECONDS] [-o OUT.h264] WHEP_URL\n", argv[0]);
        return 2;
    }
    struct viewer v = {.wanted = (unsigned long long)wanted};
    if (out && !(v.out = fopen(out, "wb"))) {
        perror(out);
        return 1;
    }
    streamhub_session_config config;
    streamhub_session_config_defaults(&config, sizeof config);
    config.url = argv[optind];
    config.chat_url = chat_url;
    config.chat_room = room;
    config.chat_token = token;
    config.token = token; /* names us to the hub: counted once in the room's audience */
    config.max_reconnect_attempts = 30; /* the stream may not have started yet */
    config.on_event = on_event;
    config.on_frame = on_frame;
    config.userdata = &v;

    streamhub_session *session = NULL;
    streamhub_result r = streamhub_session_watch(&config, &session);
    if (r != STREAMHUB_OK) return fail("watch", r);

    int status = 0, chat_sent = message == NULL;
    struct timespec tick = {0, 20 * 1000 * 1000};
    for (long waited_ms = 0; waited_ms < seconds * 1000; waited_ms += 20) {
        if (atomic_load(&v.video_frames) >= v.wanted) break;
        if (!chat_sent && atomic_load(&v.others_present)) {
            r = streamhub_session_send_chat(session, message, NULL, 0);
            if (r != STREAMHUB_OK) { status = fail("chat", r); break; }
            chat_sent = 1;
        }
        streamhub_state_info state = { .struct_size = sizeof state };
        if (streamhub_session_state(session, &state) == STREAMHUB_OK) {
            if (state.state == STREAMHUB_STATE_STREAM_ENDED) {
                fprintf(stderr, "the stream ended\n");
                break;
            }
            if (state.state == STREAMHUB_STATE_FAILED || state.state == STREAMHUB_STATE_ENDED) {
                fprintf(stderr, "session over (state %d)\n", (int)state.state);
                break;
            }
        }
        nanosleep(&tick, NULL);
    }
    streamhub_stats stats = { .struct_size = sizeof stats };
    r = streamhub_session_stop(session, &stats);
    if (r != STREAMHUB_OK) status = fail("stop", r);
    /* After free returns no callback runs: the counters and the file are ours alone. */
    streamhub_session_free(session);
    unsigned long long video = atomic_load(&v.video_frames);
    printf("received video_frames=%llu audio_frames=%llu packets_lost=%llu chat_received=%d\n",
           video, atomic_load(&v.audio_frames), (unsigned long long)stats.packets_lost,
           atomic_load(&v.chat_seen));
    if (v.out) fclose(v.out);
    if (video < v.wanted) {
        fprintf(stderr, "only %llu of %llu video frames\n", video, v.wanted);
        status = 1;
    }
    streamhub_shutdown(5000);
    return status;
}
