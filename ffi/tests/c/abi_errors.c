/*
 * Bad input through the C ABI: every call returns its documented code and nothing
 * crashes (run under AddressSanitizer by ffi/tests/c_examples.rs).
 *
 *   abi_errors TRUNCATED.flv NOT_FLV.file
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamhub.h"

static int failures = 0;

#define EXPECT(call, code)                                                              \
    do {                                                                                \
        streamhub_result got_ = (call);                                                 \
        if (got_ != (code)) {                                                           \
            char msg_[256];                                                             \
            streamhub_last_error_message(msg_, sizeof msg_, NULL);                      \
            printf("FAIL %s:%d: %s returned %s, expected %s (%s)\n", __FILE__, __LINE__, \
                   #call, streamhub_result_name(got_), streamhub_result_name(code), msg_); \
            failures++;                                                                 \
        }                                                                               \
    } while (0)

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            failures++;                                                    \
        }                                                                  \
    } while (0)

/* The calling thread's last error message. */
static const char *last_error(void) {
    static char message[512];
    streamhub_last_error_message(message, sizeof message, NULL);
    return message;
}

static int log_lines = 0;
static void on_log(void *userdata, int32_t level, const char *target, const char *message) {
    (void)level;
    (void)target;
    (void)message;
    *(int *)userdata += 1;
}

/* A session to a port where nothing listens; with `attempts` 0 it fails at the first
 * attempt, with -1 (the default policy) it keeps retrying for a while. */
static streamhub_session *dead_session(int watch, int attempts) {
    streamhub_session_config config;
    streamhub_session_config_defaults(&config, sizeof config);
    config.url = watch ? "http://127.0.0.1:9/whep/nothing" : "rtmp://127.0.0.1:9/live/nothing";
    config.max_reconnect_attempts = attempts;
    streamhub_session *session = NULL;
    streamhub_result r = watch ? streamhub_session_watch(&config, &session)
                               : streamhub_session_broadcast(&config, &session);
    CHECK(r == STREAMHUB_OK && session != NULL);
    return session;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    streamhub_session_config config;
    streamhub_session *session = NULL;
    uint8_t bytes[16] = {0};

    /* The error message and result names. */
    EXPECT(streamhub_session_config_defaults(NULL, sizeof(streamhub_session_config)), STREAMHUB_NULL_PARAMETER);
    char small[8];
    size_t full = 0;
    EXPECT(streamhub_last_error_message(small, sizeof small, &full), STREAMHUB_BUFFER_TOO_SMALL);
    CHECK(strlen(small) == 7 && full > 7);
    CHECK(strcmp(streamhub_result_name(STREAMHUB_INVALID_HANDLE), "STREAMHUB_INVALID_HANDLE") == 0);
    CHECK(strcmp(streamhub_result_name(999), "STREAMHUB_UNKNOWN") == 0);
    CHECK(strcmp(streamhub_version(), "") != 0);

    /* Logging. */
    EXPECT(streamhub_set_log_callback(42, on_log, &log_lines), STREAMHUB_INVALID_ARGUMENT);
    EXPECT(streamhub_set_log_callback(STREAMHUB_LOG_DEBUG, on_log, &log_lines), STREAMHUB_OK);

    /* Creating sessions. */
    EXPECT(streamhub_session_broadcast(NULL, &session), STREAMHUB_NULL_PARAMETER);
    streamhub_session_config_defaults(&config, sizeof config);
    EXPECT(streamhub_session_broadcast(&config, &session), STREAMHUB_NULL_PARAMETER); /* url */
    config.url = "rtmp://127.0.0.1:9/live/x";
    EXPECT(streamhub_session_broadcast(&config, NULL), STREAMHUB_NULL_PARAMETER);
    config.url = "rtmp://127.0.0.1/live/\xff\xfe";
    EXPECT(streamhub_session_broadcast(&config, &session), STREAMHUB_INVALID_UTF8);
    config.url = "not a url";
    EXPECT(streamhub_session_broadcast(&config, &session), STREAMHUB_INVALID_ARGUMENT);
    config.url = "http://127.0.0.1:9/whep/x"; /* a WHEP URL to broadcast to */
    EXPECT(streamhub_session_broadcast(&config, &session), STREAMHUB_INVALID_ARGUMENT);
    config.url = "rtmp://127.0.0.1:9/live/x";
    config.chat_url = "ws://127.0.0.1:9/chat"; /* chat without room and token */
    EXPECT(streamhub_session_broadcast(&config, &session), STREAMHUB_NULL_PARAMETER);
    config.chat_room = "room";
    config.chat_token = "\xc3\x28";
    EXPECT(streamhub_session_broadcast(&config, &session), STREAMHUB_INVALID_UTF8);
    streamhub_session_config_defaults(&config, sizeof config);
    config.url = "rtmp://127.0.0.1:9/live/x";
    config.on_frame = (streamhub_frame_callback)1; /* frames are for watch sessions */
    EXPECT(streamhub_session_broadcast(&config, &session), STREAMHUB_INVALID_ARGUMENT);
    CHECK(session == NULL);
    streamhub_session_config_defaults(&config, sizeof config);
    CHECK(config.on_stream_end < 0); /* the default: wait for the stream to come back */
    config.url = "http://127.0.0.1:9/whep/x";
    config.on_stream_end = 7; /* not a streamhub_on_stream_end */
    EXPECT(streamhub_session_watch(&config, &session), STREAMHUB_INVALID_ARGUMENT);
    CHECK(session == NULL);

    /* Backup ingests and the congestion policy. */
    streamhub_session_config_defaults(&config, sizeof config);
    CHECK(config.backup_urls == NULL && config.backup_url_count == 0);
    CHECK(config.congestion < 0 && config.drop_gops_ms < 0 && config.attempts_per_ingest < 0);
    config.url = "rtmp://127.0.0.1:9/live/x";
    config.backup_url_count = 1; /* a count without an array */
    EXPECT(streamhub_session_broadcast(&config, &session), STREAMHUB_NULL_PARAMETER);
    const char *backups[2] = {"rtmp://127.0.0.1:9/live/y", NULL};
    config.backup_urls = backups;
    config.backup_url_count = 2; /* a NULL string in the array */
    EXPECT(streamhub_session_broadcast(&config, &session), STREAMHUB_NULL_PARAMETER);
    backups[1] = "rtmp://127.0.0.1:9/live/\xff";
    EXPECT(streamhub_session_broadcast(&config, &session), STREAMHUB_INVALID_UTF8);
    backups[1] = "http://127.0.0.1:9/whep/y"; /* not an ingest */
    EXPECT(streamhub_session_broadcast(&config, &session), STREAMHUB_INVALID_ARGUMENT);
    config.backup_url_count = 1;
    config.congestion = 5; /* not a streamhub_congestion */
    EXPECT(streamhub_session_broadcast(&config, &session), STREAMHUB_INVALID_ARGUMENT);
    config.congestion = STREAMHUB_CONGESTION_LIVE;
    config.drop_disposable_ms = 1000; /* above drop_until_keyframe_ms (900) */
    EXPECT(streamhub_session_broadcast(&config, &session), STREAMHUB_INVALID_ARGUMENT);
    {
        char message[256];
        streamhub_last_error_message(message, sizeof message, NULL);
        CHECK(strstr(message, "in order") != NULL);
    }
    config.drop_disposable_ms = 0;
    EXPECT(streamhub_session_broadcast(&config, &session), STREAMHUB_INVALID_ARGUMENT);
    CHECK(session == NULL);
    /* Valid: a session starts (its ingests are closed ports) and is freed. */
    config.drop_disposable_ms = 300;
    config.drop_until_keyframe_ms = 400;
    config.drop_gops_ms = 500;
    config.attempts_per_ingest = 1;
    EXPECT(streamhub_session_broadcast(&config, &session), STREAMHUB_OK);
    CHECK(session != NULL);
    streamhub_session_free(session);
    session = NULL;
    config.congestion = STREAMHUB_CONGESTION_BACK_PRESSURE; /* thresholds unused */
    config.drop_disposable_ms = 5000;
    EXPECT(streamhub_session_broadcast(&config, &session), STREAMHUB_OK);
    streamhub_session_free(session);
    session = NULL;

    /* Handles that are NULL, made up, or freed. */
    streamhub_stats stats = { .struct_size = sizeof stats };
    streamhub_state_info state = { .struct_size = sizeof state };
    EXPECT(streamhub_session_stats(NULL, &stats), STREAMHUB_NULL_PARAMETER);
    EXPECT(streamhub_session_stats((streamhub_session *)0x1234, &stats), STREAMHUB_INVALID_HANDLE);
    streamhub_session_free(NULL);
    streamhub_session_free((streamhub_session *)0x1234);

    streamhub_session *broadcast = dead_session(0, 0);
    EXPECT(streamhub_session_stats(broadcast, NULL), STREAMHUB_NULL_PARAMETER);
    EXPECT(streamhub_session_state(broadcast, NULL), STREAMHUB_NULL_PARAMETER);
    EXPECT(streamhub_session_send_video(broadcast, NULL), STREAMHUB_NULL_PARAMETER);
    streamhub_video_frame video = {NULL, 10, STREAMHUB_VIDEO_AVCC, true, 0, 0};
    EXPECT(streamhub_session_send_video(broadcast, &video), STREAMHUB_NULL_PARAMETER);
    video.data = bytes;
    video.format = 99;
    EXPECT(streamhub_session_send_video(broadcast, &video), STREAMHUB_INVALID_ARGUMENT);
    streamhub_audio_frame audio = {bytes, sizeof bytes, -1, 0};
    EXPECT(streamhub_session_send_audio(broadcast, &audio), STREAMHUB_INVALID_ARGUMENT);
    EXPECT(streamhub_session_set_video_config(broadcast, bytes, sizeof bytes), STREAMHUB_INVALID_ARGUMENT);
    EXPECT(streamhub_session_set_video_config(broadcast, NULL, 5), STREAMHUB_NULL_PARAMETER);
    EXPECT(streamhub_session_set_audio_config(broadcast, bytes, 1), STREAMHUB_INVALID_ARGUMENT);
    /* A length no buffer can have (a negative length cast to size_t): refused, not read. */
    streamhub_video_frame huge = {bytes, SIZE_MAX, STREAMHUB_VIDEO_AVCC, true, 0, 0};
    EXPECT(streamhub_session_send_video(broadcast, &huge), STREAMHUB_INVALID_ARGUMENT);
    EXPECT(streamhub_session_set_video_config(broadcast, bytes, (size_t)-5), STREAMHUB_INVALID_ARGUMENT);
    /* An id buffer too small for the id: refused before anything is queued. */
    char short_id[STREAMHUB_CLIENT_MSG_ID_SIZE - 1];
    EXPECT(streamhub_session_send_chat(broadcast, "hi", short_id, sizeof short_id), STREAMHUB_BUFFER_TOO_SMALL);
    streamhub_session *retrying = dead_session(0, -1); /* still connecting: not failed yet */
    EXPECT(streamhub_session_send_chat(retrying, "hi", NULL, 0), STREAMHUB_CHAT_ERROR); /* no chat */
    streamhub_session_free(retrying);
    EXPECT(streamhub_session_send_chat(broadcast, "\xff", NULL, 0), STREAMHUB_INVALID_UTF8);
    EXPECT(streamhub_session_send_chat(broadcast, NULL, NULL, 0), STREAMHUB_NULL_PARAMETER);

    /* Nothing listens: the session fails (no retries allowed), and says why. */
    EXPECT(streamhub_session_wait_live(broadcast, 10000, &state), STREAMHUB_OK);
    CHECK(state.state == STREAMHUB_STATE_FAILED);
    CHECK(state.fail_reason == STREAMHUB_FAIL_UNREACHABLE);
    video.format = STREAMHUB_VIDEO_AVCC;
    EXPECT(streamhub_session_send_video(broadcast, &video), STREAMHUB_SESSION_FAILED);
    EXPECT(streamhub_session_stop(broadcast, &stats), STREAMHUB_OK);
    EXPECT(streamhub_session_stop(broadcast, NULL), STREAMHUB_OK); /* idempotent */
    streamhub_session_free(broadcast);
    EXPECT(streamhub_session_stats(broadcast, &stats), STREAMHUB_INVALID_HANDLE); /* after free */
    EXPECT(streamhub_session_send_video(broadcast, &video), STREAMHUB_INVALID_HANDLE);
    streamhub_session_free(broadcast); /* twice: a no-op */

    /* The other kind of session. */
    streamhub_session *watch = dead_session(1, 0);
    EXPECT(streamhub_session_send_video(watch, &video), STREAMHUB_WRONG_KIND);
    EXPECT(streamhub_session_set_audio_config(watch, (const uint8_t *)"\x12\x10", 2), STREAMHUB_WRONG_KIND);
    EXPECT(streamhub_session_set_encoder_bitrate(watch, 1000000), STREAMHUB_WRONG_KIND);
    EXPECT(streamhub_session_set_encoder_bitrate((streamhub_session *)0x1234, 1000000), STREAMHUB_INVALID_HANDLE);
    EXPECT(streamhub_session_stop(watch, &stats), STREAMHUB_OK);
    CHECK(stats.state == STREAMHUB_STATE_ENDED || stats.state == STREAMHUB_STATE_FAILED);
    streamhub_session_free(watch);

    /* struct_size: the compatibility rule of the header. */
    EXPECT(streamhub_session_config_defaults(&config, 4), STREAMHUB_INVALID_ARGUMENT);
    EXPECT(streamhub_session_config_defaults(&config, sizeof config), STREAMHUB_OK);
    CHECK(config.struct_size == sizeof config);
    config.url = "rtmp://127.0.0.1:9/live/nothing";
    config.struct_size = 0; /* never set: as a program built before struct_size */
    EXPECT(streamhub_session_broadcast(&config, &session), STREAMHUB_INVALID_ARGUMENT);
    CHECK(strstr(last_error(), "struct_size") != NULL);
    config.struct_size = 1u << 20;
    EXPECT(streamhub_session_broadcast(&config, &session), STREAMHUB_INVALID_ARGUMENT);
    /* A newer app's bigger config: accepted while what this library does not know is
     * zero, refused once a newer field is set. */
    struct { streamhub_session_config known; uint64_t newer[2]; } newer_config;
    EXPECT(streamhub_session_config_defaults(&newer_config.known, sizeof newer_config), STREAMHUB_OK);
    CHECK(newer_config.known.struct_size == sizeof newer_config && newer_config.newer[1] == 0);
    newer_config.known.url = "rtmp://127.0.0.1:9/live/nothing";
    newer_config.known.max_reconnect_attempts = 0;
    EXPECT(streamhub_session_broadcast(&newer_config.known, &session), STREAMHUB_OK);
    streamhub_session_free(session);
    session = NULL;
    newer_config.newer[1] = 7;
    EXPECT(streamhub_session_broadcast(&newer_config.known, &session), STREAMHUB_INVALID_ARGUMENT);
    CHECK(strstr(last_error(), "does not know") != NULL);
    /* Outputs: never more than struct_size bytes written; struct_size says how many. */
    streamhub_session *counted = dead_session(0, 0);
    struct { streamhub_stats known; uint8_t newer[24]; } newer_stats;
    memset(&newer_stats, 0xAB, sizeof newer_stats);
    newer_stats.known.struct_size = sizeof newer_stats;
    EXPECT(streamhub_session_stats(counted, &newer_stats.known), STREAMHUB_OK);
    CHECK(newer_stats.known.struct_size == sizeof(streamhub_stats));
    CHECK(newer_stats.newer[0] == 0xAB && newer_stats.newer[23] == 0xAB);
    stats.struct_size = 3;
    EXPECT(streamhub_session_stats(counted, &stats), STREAMHUB_INVALID_ARGUMENT);
    state.struct_size = 0;
    EXPECT(streamhub_session_state(counted, &state), STREAMHUB_INVALID_ARGUMENT);
    state.struct_size = sizeof state;
    EXPECT(streamhub_session_state(counted, &state), STREAMHUB_OK);
    CHECK(state.struct_size == sizeof state);
    streamhub_session_free(counted);

    /* The FLV reader. */
    streamhub_flv_reader *reader = NULL;
    streamhub_flv_sample sample;
    bool end = false;
    EXPECT(streamhub_flv_reader_open("/nonexistent/file.flv", &reader), STREAMHUB_IO_ERROR);
    EXPECT(streamhub_flv_reader_open(argv[2], &reader), STREAMHUB_IO_ERROR); /* not FLV */
    EXPECT(streamhub_flv_reader_open(NULL, &reader), STREAMHUB_NULL_PARAMETER);
    EXPECT(streamhub_flv_reader_open(argv[1], &reader), STREAMHUB_OK);
    EXPECT(streamhub_flv_reader_next(reader, NULL, &end), STREAMHUB_NULL_PARAMETER);
    EXPECT(streamhub_flv_reader_next(reader, &sample, NULL), STREAMHUB_NULL_PARAMETER);
    streamhub_result r;
    int samples = 0;
    while ((r = streamhub_flv_reader_next(reader, &sample, &end)) == STREAMHUB_OK && !end) samples++;
    CHECK(samples > 10);
    CHECK(r == STREAMHUB_IO_ERROR); /* truncated: an error, not a silent end */
    streamhub_flv_reader_free(reader);
    EXPECT(streamhub_flv_reader_next(reader, &sample, &end), STREAMHUB_INVALID_HANDLE);
    streamhub_flv_reader_free(reader);
    streamhub_flv_reader_free(NULL);

    /* A panic inside stays inside. */
    EXPECT(streamhub_debug_panic(), STREAMHUB_PANIC);
    char message[256];
    streamhub_last_error_message(message, sizeof message, NULL);
    CHECK(strstr(message, "panic") != NULL);
    EXPECT(streamhub_session_config_defaults(&config, sizeof config), STREAMHUB_OK); /* still working */

    CHECK(log_lines > 0);
    EXPECT(streamhub_set_log_callback(STREAMHUB_LOG_OFF, NULL, NULL), STREAMHUB_OK);

    /* After shutdown. */
    streamhub_session *left_open = dead_session(0, 0);
    EXPECT(streamhub_shutdown(5000), STREAMHUB_OK);
    EXPECT(streamhub_session_stats(left_open, &stats), STREAMHUB_SHUT_DOWN);
    config.url = "rtmp://127.0.0.1:9/live/x";
    EXPECT(streamhub_session_broadcast(&config, &session), STREAMHUB_SHUT_DOWN);
    EXPECT(streamhub_shutdown(5000), STREAMHUB_OK); /* idempotent */
    streamhub_session_free(left_open);

    if (failures == 0) printf("all checks passed\n");
    return failures == 0 ? 0 : 1;
}
