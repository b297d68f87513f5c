/* gpuguard recognition pipeline: persons (nanodet), faces inside them
 * (BlazeFace), a quality gate, face embeddings (faceres) and optional age,
 * gender and anti-spoofing, on one frame. Models run through an injected
 * runner, so the application routes them through the guard and tests use
 * the engine directly. docs/pipeline.md has the design and measurements. */
#ifndef GPUGUARD_PIPELINE_H
#define GPUGUARD_PIPELINE_H

#include "gpuguard/guard.h"
#include "gpuguard/image.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- runners ------------------------------------------------------------
 * Runs model `model` (a catalog name, or another model of the package such
 * as "antispoof") on the preprocessed input `in` (float32, the model's input
 * shape). On success fills outs[0..*n_outs-1] with malloc'd tensors in the
 * model's output order (the pipeline releases them with
 * gg_gtensor_release) and writes the device that served it into device
 * (may be left ""). On failure returns a negative GG_E* code with a message
 * in err, and owns nothing. Called from the thread of gg_pipeline_run. */
typedef int (*gg_pipeline_run_fn)(void *ctx, const char *model, const gg_gtensor *in,
                                  gg_gtensor *outs, int max_outs, int *n_outs, char *device,
                                  size_t device_len, char *err, size_t errlen);

typedef struct gg_pipeline_runner {
  gg_pipeline_run_fn run;
  void *ctx; /* borrowed: must outlive the pipeline */
} gg_pipeline_runner;

/* A runner that goes through the guard (retries, fallback, worker
 * isolation): gg_guard_infer per model. g is borrowed. */
gg_pipeline_runner gg_pipeline_runner_guard(gg_guard *g);

/* A runner on the engine in this process (tests, the CLI): each model is
 * loaded once and a session kept per model and input shape. models_dir
 * NULL: catalog and package lookup as gg_catalog_path / gg_model_resolve.
 * threads as gg_session_opts. Thread-safe (one run at a time). Returns 0,
 * GG_ENOMEM; *out freed with gg_pipeline_engine_free (NULL is a no-op),
 * after the pipelines that use it. The device it reports is "cpu". */
typedef struct gg_pipeline_engine gg_pipeline_engine;
int gg_pipeline_engine_new(const char *models_dir, int threads, gg_pipeline_engine **out);
void gg_pipeline_engine_free(gg_pipeline_engine *e);
gg_pipeline_runner gg_pipeline_engine_runner(gg_pipeline_engine *e);
/* Sessions the engine runner holds (one per model and input shape). */
int gg_pipeline_engine_sessions(const gg_pipeline_engine *e);

/* ---- quality gate ------------------------------------------------------- */

/* Why a face was rejected: bits of gg_face_quality.rejected. Append only. */
typedef enum gg_face_reject {
  GG_FACE_REJECT_SMALL = 1 << 0, /* box side below min_box_px */
  GG_FACE_REJECT_EYES = 1 << 1,  /* eyes closer than min_eye_px */
  GG_FACE_REJECT_BLUR = 1 << 2,  /* Laplacian variance below min_sharpness */
  GG_FACE_REJECT_YAW = 1 << 3,   /* turned more than max_yaw_deg */
  GG_FACE_REJECT_ROLL = 1 << 4,  /* tilted more than max_roll_deg */
  GG_FACE_REJECT_SCORE = 1 << 5, /* detector score below min_score */
  GG_FACE_REJECT_COUNT = 6
} gg_face_reject;

/* The short name of one reject bit ("blur"), "unknown" otherwise. */
const char *gg_face_reject_name(unsigned bit);
/* The set bits of mask as "blur,yaw" into buf ("" when none); returns buf. */
const char *gg_face_reject_format(unsigned mask, char *buf, size_t len);

typedef struct gg_face_quality_opts {
  float min_box_px;    /* shorter side of the detector box, source pixels */
  float min_eye_px;    /* distance between the eye keypoints, source pixels */
  float min_sharpness; /* variance of the Laplacian on the aligned grey crop */
  float max_yaw_deg;   /* |yaw| estimated from the keypoints */
  float max_roll_deg;  /* |roll|: the angle of the eye line */
  float min_score;     /* detector score */
} gg_face_quality_opts;

typedef enum gg_face_quality_preset {
  GG_FACE_QUALITY_LOOSE = 0, /* recognition: reject only what cannot match */
  GG_FACE_QUALITY_STRICT,    /* enrollment: only faces worth storing */
  GG_FACE_QUALITY_PRESET_COUNT
} gg_face_quality_preset;

/* Fills o with a preset's thresholds (docs/pipeline.md says how they were
 * chosen). Unknown presets get LOOSE. */
void gg_face_quality_defaults(gg_face_quality_preset preset, gg_face_quality_opts *o);

/* What the gate measured on one face, and its verdict. */
typedef struct gg_face_quality {
  unsigned rejected; /* gg_face_reject bits; 0: passed */
  float box_px, eye_px, sharpness, yaw_deg, roll_deg, score;
} gg_face_quality;

/* ---- results ------------------------------------------------------------ */

#define GG_PIPELINE_MAX_OBJECTS 64
#define GG_PIPELINE_MAX_FACES 32

/* One detected object, in source-image pixels. */
typedef struct gg_object {
  float x0, y0, x1, y1, score;
  int cls;           /* 0-based COCO class (0 = person) */
  const char *label; /* static: "person" */
} gg_object;

/* COCO class name of nanodet class i (0..79); "unknown" otherwise. */
const char *gg_object_label(int cls);

typedef struct gg_face_result {
  float x0, y0, x1, y1, score; /* source pixels */
  float kp[6][2];              /* eyes (image-left first), nose, mouth, ears */
  int person;                  /* index into persons it was found in; -1: whole frame */
  gg_face_quality quality;
  int dim;          /* embedding length; 0 when not embedded (rejected, or not asked) */
  float *embedding; /* L2-normalised, dim floats; owned by the result */
  int has_attributes;
  float age;  /* years, expectation of faceres's 100-bin age output */
  float male; /* faceres gender output: probability of male, 0..1 */
  int has_liveness;
  float antispoof; /* antispoof.json: 0..1, higher = real */
  float liveness;  /* liveness.json: 0..1, higher = live */
} gg_face_result;

typedef enum gg_pipeline_stage {
  GG_STAGE_PERSONS = 0,
  GG_STAGE_FACES,
  GG_STAGE_QUALITY,
  GG_STAGE_EMBED,
  GG_STAGE_ATTRIBUTES,
  GG_STAGE_LIVENESS,
  GG_STAGE_COUNT
} gg_pipeline_stage;

/* The short name of a stage ("persons"), "unknown" past the end. */
const char *gg_pipeline_stage_name(gg_pipeline_stage s);

typedef struct gg_pipeline_result {
  int n_persons;
  gg_object persons[GG_PIPELINE_MAX_OBJECTS]; /* class "person" (or all, see request) */
  int n_faces;
  gg_face_result faces[GG_PIPELINE_MAX_FACES];
  double stage_ms[GG_STAGE_COUNT]; /* wall time of each stage (runner calls included) */
  double total_ms;
  int model_runs;        /* runner calls made */
  char device[128];      /* the device the runner reported last ("" when it said none) */
  char failed_model[32]; /* on a runner error: the model that failed */
} gg_pipeline_result;

/* Frees the embeddings and zeroes *r. NULL is a no-op. */
void gg_pipeline_result_release(gg_pipeline_result *r);

/* ---- the pipeline ------------------------------------------------------- */

typedef struct gg_pipeline_opts {
  const char *object_detector; /* "nanodet" */
  const char *face_detector;   /* "blazeface" */
  const char *embedder;        /* "faceres" (GG_FACE_EMBED_*); "mobilefacenet" allowed */
  float object_min_score;      /* nanodet class score (0.25) */
  float object_iou;            /* per-class NMS overlap (0.5) */
  float face_min_score;        /* BlazeFace (0.5) */
  float person_margin;         /* person box grown by this fraction of its size per side (0.1) */
  float rate_per_s;            /* passes per second per stream; 0: unlimited (default 0) */
  float rate_burst;            /* bucket size; 0: max(1, rate_per_s) */
} gg_pipeline_opts;

/* Fills o with the defaults above. */
void gg_pipeline_opts_default(gg_pipeline_opts *o);

/* What one call asks for. NULL request: gg_pipeline_request_default. */
typedef struct gg_pipeline_request {
  const char *stream;           /* rate-limited stream id; NULL: not limited */
  int persons_first;            /* 1: faces searched in person boxes first (default) */
  int also_frame;               /* 1: and on the whole frame too, adding faces outside every
                                   person nanodet found (one more BlazeFace run; default 0) */
  int all_classes;              /* 1: persons[] gets every class nanodet finds, not just "person" */
  gg_face_quality_opts quality; /* the gate (default LOOSE) */
  int embed;                    /* 1: embed faces that pass (default) */
  int attributes;               /* 1: age and gender from faceres (default 0) */
  int liveness;                 /* 1: antispoof + liveness (default 0) */
} gg_pipeline_request;

void gg_pipeline_request_default(gg_pipeline_request *r);

typedef struct gg_pipeline gg_pipeline;

/* Creates a pipeline over `runner` (copied; its ctx is borrowed). o NULL:
 * defaults. Loads nothing: models run on first use through the runner.
 * Returns 0, GG_EINVAL (no run function, an embedder of unknown input) or
 * GG_ENOMEM, with a message in err. */
int gg_pipeline_new(const gg_pipeline_runner *runner, const gg_pipeline_opts *o, gg_pipeline **out,
                    char *err, size_t errlen);
void gg_pipeline_free(gg_pipeline *p);

/* Takes one token from stream's bucket at time now_ns (gg_now_ns): 0, or
 * GG_EBUSY when the stream is over its rate. Unlimited pipelines and NULL
 * streams always get 0. gg_pipeline_run calls it first. Thread-safe. */
int gg_pipeline_admit(gg_pipeline *p, const char *stream, uint64_t now_ns);

/* Runs the pipeline on img: persons, faces (in each person box, or on the
 * whole frame when there is none or persons_first is 0; duplicates from
 * overlapping person boxes merged), the quality gate, then embeddings and
 * the asked extras for the faces that passed. *out is filled (release with
 * gg_pipeline_result_release, also after a failure). Returns 0; GG_EBUSY
 * (stream over its rate, nothing run); GG_EINVAL (bad image); or the
 * runner's error, with err naming the model and out->failed_model set. */
int gg_pipeline_run(gg_pipeline *p, const gg_image *img, const gg_pipeline_request *rq,
                    gg_pipeline_result *out, char *err, size_t errlen);

/* Objects only (a detect route): nanodet on img, every class when
 * all_classes, else persons; at most max into out, best first. Returns the
 * count or a negative error (err names the model). device may be NULL. */
int gg_pipeline_detect_objects(gg_pipeline *p, const gg_image *img, int all_classes, gg_object *out,
                               int max, char *device, size_t device_len, char *err, size_t errlen);

/* Measures one face's quality on img without the verdict's thresholds
 * applied (rejected stays 0): box and eye distance, sharpness of the
 * aligned 112x112 grey crop, yaw and roll. Returns 0, GG_EINVAL or
 * GG_ENOMEM. For calibration and tests. */
int gg_face_quality_measure(const gg_image *img, const float box[4], float score,
                            const float kp[6][2], gg_face_quality *q);
/* Applies thresholds to a measurement: sets q->rejected. */
void gg_face_quality_judge(const gg_face_quality_opts *o, gg_face_quality *q);

#ifdef __cplusplus
}
#endif
#endif
