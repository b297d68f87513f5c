/* Failure taxonomy: status-code tables for CUDA, cuDNN, cuBLAS and OpenCL,
 * and the log-line pattern table that doctor --explain prints. */
#include "gpuguard/classify.h"
#include "gpuguard/core.h"
#include "gpuguard/error.h"

#include <assert.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- classes ------------------------------------------------------------ */

typedef struct class_info {
  const char *name;
  const char *description;
  const char *advice;
  gg_fail_action action;
} class_info;

static const class_info k_classes[GG_FAIL_CLASS_COUNT] = {
    [GG_FAIL_NONE] = {"none", "no failure", "nothing to do", GG_ACTION_NONE},
    [GG_FAIL_OOM] = {"oom", "the device (or host) ran out of memory for an allocation",
                     "free cached blocks or lower the batch/memory budget and retry; if it "
                     "persists, the model set does not fit this device",
                     GG_ACTION_SHRINK_RETRY},
    [GG_FAIL_OUT_OF_RESOURCES] =
        {"out_of_resources",
         "the device ran out of a non-memory resource (registers, shared memory, queue "
         "slots) or was busy",
         "retry with backoff; use smaller work-group/block sizes or fewer concurrent requests",
         GG_ACTION_RETRY},
    [GG_FAIL_LAUNCH] = {"launch", "a kernel could not be launched; the context is still usable",
                        "retry once; if it repeats, run this op on another device (cpu)",
                        GG_ACTION_FALLBACK},
    [GG_FAIL_DEVICE_LOST] =
        {"device_lost",
         "the device context is dead (illegal address, ECC error, fallen off the bus); every "
         "later call fails until it is reset",
         "reset the device (drop every allocation made on it) or restart the worker process; "
         "repeated occurrences need the hardware or driver checked (dmesg | grep Xid)",
         GG_ACTION_RESET_DEVICE},
    [GG_FAIL_HANG] = {"hang", "submitted work never completed (watchdog or timeout)",
                      "kill the worker process that owns the device and start a new one",
                      GG_ACTION_RESTART_WORKER},
    [GG_FAIL_COMPILE] = {"compile",
                         "a kernel could not be compiled or loaded (PTX/OpenCL build, missing "
                         "libdevice or ptxas, no binary for this GPU)",
                         "fix the toolkit installation (gpuguard doctor) or use another device",
                         GG_ACTION_FIX_SETUP},
    [GG_FAIL_DRIVER] = {"driver",
                        "the driver is absent, too old for the toolkit, not initialised or "
                        "reported an internal error",
                        "run 'gpuguard doctor' and apply the fixes it prints",
                        GG_ACTION_FIX_SETUP},
    [GG_FAIL_UNSUPPORTED] = {"unsupported", "the device or this build cannot do this at all",
                             "use a device that supports it (cpu always works)",
                             GG_ACTION_FALLBACK},
    [GG_FAIL_BAD_INPUT] = {"bad_input", "the request itself is wrong; not the device's fault",
                           "fix the request; retrying will not help", GG_ACTION_REJECT},
};

const char *gg_fail_class_name(gg_fail_class c) {
  return (c >= 0 && c < GG_FAIL_CLASS_COUNT) ? k_classes[c].name : "?";
}
const char *gg_fail_class_description(gg_fail_class c) {
  return (c >= 0 && c < GG_FAIL_CLASS_COUNT) ? k_classes[c].description : "unknown class";
}
const char *gg_fail_class_advice(gg_fail_class c) {
  return (c >= 0 && c < GG_FAIL_CLASS_COUNT) ? k_classes[c].advice : "";
}
gg_fail_action gg_fail_class_recovery(gg_fail_class c) {
  return (c >= 0 && c < GG_FAIL_CLASS_COUNT) ? k_classes[c].action : GG_ACTION_FIX_SETUP;
}
const char *gg_fail_action_name(gg_fail_action a) {
  static const char *const names[GG_ACTION_COUNT] = {
      "none", "shrink_retry", "retry", "reset_device", "restart_worker", "fallback",
      "fix_setup", "reject"};
  return (a >= 0 && a < GG_ACTION_COUNT) ? names[a] : "?";
}
int gg_fail_class_is_sticky(gg_fail_class c) {
  return c == GG_FAIL_DEVICE_LOST || c == GG_FAIL_HANG;
}
gg_fail_class gg_fail_class_from_name(const char *name) {
  for (int i = 0; name && i < GG_FAIL_CLASS_COUNT; i++)
    if (!strcmp(name, k_classes[i].name)) return (gg_fail_class)i;
  return GG_FAIL_CLASS_COUNT;
}

gg_fail_class gg_classify_err(int e) {
  switch (e) {
  case GG_OK: return GG_FAIL_NONE;
  case GG_EDEV_OOM:
  case GG_EBUDGET:
  case GG_ENOMEM: return GG_FAIL_OOM;
  case GG_EOUT_OF_RESOURCES:
  case GG_EBUSY: return GG_FAIL_OUT_OF_RESOURCES;
  case GG_ELAUNCH: return GG_FAIL_LAUNCH;
  case GG_EDEVICE_LOST: return GG_FAIL_DEVICE_LOST;
  case GG_ETIMEOUT: return GG_FAIL_HANG;
  case GG_ECOMPILE: return GG_FAIL_COMPILE;
  case GG_EDRIVER:
  case GG_ENODEV:
  case GG_ESTATE: return GG_FAIL_DRIVER;
  case GG_EUNSUPPORTED:
  case GG_ENOTIMPL: return GG_FAIL_UNSUPPORTED;
  case GG_EINVAL:
  case GG_EPARSE:
  case GG_ERANGE:
  case GG_ETOO_LARGE:
  case GG_ENOTFOUND:
  case GG_EIO:
  case GG_ECANCELED: return GG_FAIL_BAD_INPUT;
  default: return e > 0 ? GG_FAIL_NONE : GG_FAIL_DRIVER;
  }
}

/* ---- status tables ------------------------------------------------------ */

typedef struct status_entry {
  int code;
  const char *name;
  gg_fail_class cls;
  int err;
} status_entry;

#define S(code, name, cls, err) {code, #name, GG_FAIL_##cls, GG_E##err}

/* CUDA driver API (cuda.h, CUDA 13). 700 and 714..719 are sticky: "the
 * process is left in an inconsistent state", hence DEVICE_LOST. */
static const status_entry k_cuda[] = {
    {0, "CUDA_SUCCESS", GG_FAIL_NONE, 0},
    S(1, CUDA_ERROR_INVALID_VALUE, BAD_INPUT, INVAL),
    S(2, CUDA_ERROR_OUT_OF_MEMORY, OOM, DEV_OOM),
    S(3, CUDA_ERROR_NOT_INITIALIZED, DRIVER, DRIVER),
    S(4, CUDA_ERROR_DEINITIALIZED, DRIVER, STATE),
    S(5, CUDA_ERROR_PROFILER_DISABLED, UNSUPPORTED, UNSUPPORTED),
    S(6, CUDA_ERROR_PROFILER_NOT_INITIALIZED, UNSUPPORTED, UNSUPPORTED),
    S(7, CUDA_ERROR_PROFILER_ALREADY_STARTED, BAD_INPUT, STATE),
    S(8, CUDA_ERROR_PROFILER_ALREADY_STOPPED, BAD_INPUT, STATE),
    S(34, CUDA_ERROR_STUB_LIBRARY, DRIVER, DRIVER),
    S(36, CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER, DRIVER, DRIVER),
    S(46, CUDA_ERROR_DEVICE_UNAVAILABLE, OUT_OF_RESOURCES, BUSY),
    S(100, CUDA_ERROR_NO_DEVICE, DRIVER, NODEV),
    S(101, CUDA_ERROR_INVALID_DEVICE, DRIVER, NODEV),
    S(102, CUDA_ERROR_DEVICE_NOT_LICENSED, DRIVER, DRIVER),
    S(200, CUDA_ERROR_INVALID_IMAGE, COMPILE, COMPILE),
    S(201, CUDA_ERROR_INVALID_CONTEXT, DRIVER, STATE),
    S(202, CUDA_ERROR_CONTEXT_ALREADY_CURRENT, BAD_INPUT, STATE),
    S(205, CUDA_ERROR_MAP_FAILED, DRIVER, DRIVER),
    S(206, CUDA_ERROR_UNMAP_FAILED, DRIVER, DRIVER),
    S(207, CUDA_ERROR_ARRAY_IS_MAPPED, BAD_INPUT, STATE),
    S(208, CUDA_ERROR_ALREADY_MAPPED, BAD_INPUT, STATE),
    S(209, CUDA_ERROR_NO_BINARY_FOR_GPU, COMPILE, COMPILE),
    S(210, CUDA_ERROR_ALREADY_ACQUIRED, BAD_INPUT, STATE),
    S(211, CUDA_ERROR_NOT_MAPPED, BAD_INPUT, STATE),
    S(212, CUDA_ERROR_NOT_MAPPED_AS_ARRAY, BAD_INPUT, STATE),
    S(213, CUDA_ERROR_NOT_MAPPED_AS_POINTER, BAD_INPUT, STATE),
    S(214, CUDA_ERROR_ECC_UNCORRECTABLE, DEVICE_LOST, DEVICE_LOST),
    S(215, CUDA_ERROR_UNSUPPORTED_LIMIT, UNSUPPORTED, UNSUPPORTED),
    S(216, CUDA_ERROR_CONTEXT_ALREADY_IN_USE, OUT_OF_RESOURCES, BUSY),
    S(217, CUDA_ERROR_PEER_ACCESS_UNSUPPORTED, UNSUPPORTED, UNSUPPORTED),
    S(218, CUDA_ERROR_INVALID_PTX, COMPILE, COMPILE),
    S(219, CUDA_ERROR_INVALID_GRAPHICS_CONTEXT, BAD_INPUT, STATE),
    S(220, CUDA_ERROR_NVLINK_UNCORRECTABLE, DEVICE_LOST, DEVICE_LOST),
    S(221, CUDA_ERROR_JIT_COMPILER_NOT_FOUND, COMPILE, COMPILE),
    S(222, CUDA_ERROR_UNSUPPORTED_PTX_VERSION, COMPILE, COMPILE),
    S(223, CUDA_ERROR_JIT_COMPILATION_DISABLED, COMPILE, COMPILE),
    S(224, CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY, UNSUPPORTED, UNSUPPORTED),
    S(225, CUDA_ERROR_UNSUPPORTED_DEVSIDE_SYNC, UNSUPPORTED, UNSUPPORTED),
    S(226, CUDA_ERROR_CONTAINED, DEVICE_LOST, DEVICE_LOST),
    S(300, CUDA_ERROR_INVALID_SOURCE, COMPILE, COMPILE),
    S(301, CUDA_ERROR_FILE_NOT_FOUND, BAD_INPUT, NOTFOUND),
    S(302, CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND, DRIVER, DRIVER),
    S(303, CUDA_ERROR_SHARED_OBJECT_INIT_FAILED, DRIVER, DRIVER),
    S(304, CUDA_ERROR_OPERATING_SYSTEM, DRIVER, DRIVER),
    S(400, CUDA_ERROR_INVALID_HANDLE, BAD_INPUT, INVAL),
    S(401, CUDA_ERROR_ILLEGAL_STATE, BAD_INPUT, STATE),
    S(402, CUDA_ERROR_LOSSY_QUERY, UNSUPPORTED, UNSUPPORTED),
    S(500, CUDA_ERROR_NOT_FOUND, LAUNCH, NOTFOUND),
    S(600, CUDA_ERROR_NOT_READY, OUT_OF_RESOURCES, BUSY),
    S(700, CUDA_ERROR_ILLEGAL_ADDRESS, DEVICE_LOST, DEVICE_LOST),
    S(701, CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, OUT_OF_RESOURCES, OUT_OF_RESOURCES),
    S(702, CUDA_ERROR_LAUNCH_TIMEOUT, HANG, TIMEOUT),
    S(703, CUDA_ERROR_LAUNCH_INCOMPATIBLE_TEXTURING, LAUNCH, LAUNCH),
    S(704, CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED, BAD_INPUT, STATE),
    S(705, CUDA_ERROR_PEER_ACCESS_NOT_ENABLED, BAD_INPUT, STATE),
    S(708, CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE, BAD_INPUT, STATE),
    S(709, CUDA_ERROR_CONTEXT_IS_DESTROYED, DEVICE_LOST, DEVICE_LOST),
    S(710, CUDA_ERROR_ASSERT, DEVICE_LOST, DEVICE_LOST),
    S(711, CUDA_ERROR_TOO_MANY_PEERS, OUT_OF_RESOURCES, OUT_OF_RESOURCES),
    S(712, CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED, BAD_INPUT, STATE),
    S(713, CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED, BAD_INPUT, STATE),
    S(714, CUDA_ERROR_HARDWARE_STACK_ERROR, DEVICE_LOST, DEVICE_LOST),
    S(715, CUDA_ERROR_ILLEGAL_INSTRUCTION, DEVICE_LOST, DEVICE_LOST),
    S(716, CUDA_ERROR_MISALIGNED_ADDRESS, DEVICE_LOST, DEVICE_LOST),
    S(717, CUDA_ERROR_INVALID_ADDRESS_SPACE, DEVICE_LOST, DEVICE_LOST),
    S(718, CUDA_ERROR_INVALID_PC, DEVICE_LOST, DEVICE_LOST),
    S(719, CUDA_ERROR_LAUNCH_FAILED, DEVICE_LOST, DEVICE_LOST),
    S(720, CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE, OUT_OF_RESOURCES, OUT_OF_RESOURCES),
    S(721, CUDA_ERROR_TENSOR_MEMORY_LEAK, DRIVER, DRIVER),
    S(800, CUDA_ERROR_NOT_PERMITTED, UNSUPPORTED, UNSUPPORTED),
    S(801, CUDA_ERROR_NOT_SUPPORTED, UNSUPPORTED, UNSUPPORTED),
    S(802, CUDA_ERROR_SYSTEM_NOT_READY, DRIVER, DRIVER),
    S(803, CUDA_ERROR_SYSTEM_DRIVER_MISMATCH, DRIVER, DRIVER),
    S(804, CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE, DRIVER, DRIVER),
    S(805, CUDA_ERROR_MPS_CONNECTION_FAILED, DRIVER, DRIVER),
    S(806, CUDA_ERROR_MPS_RPC_FAILURE, DRIVER, DRIVER),
    S(807, CUDA_ERROR_MPS_SERVER_NOT_READY, OUT_OF_RESOURCES, BUSY),
    S(808, CUDA_ERROR_MPS_MAX_CLIENTS_REACHED, OUT_OF_RESOURCES, BUSY),
    S(809, CUDA_ERROR_MPS_MAX_CONNECTIONS_REACHED, OUT_OF_RESOURCES, BUSY),
    S(810, CUDA_ERROR_MPS_CLIENT_TERMINATED, DEVICE_LOST, DEVICE_LOST),
    S(811, CUDA_ERROR_CDP_NOT_SUPPORTED, UNSUPPORTED, UNSUPPORTED),
    S(812, CUDA_ERROR_CDP_VERSION_MISMATCH, COMPILE, COMPILE),
    S(900, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, BAD_INPUT, STATE),
    S(901, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, BAD_INPUT, STATE),
    S(902, CUDA_ERROR_STREAM_CAPTURE_MERGE, BAD_INPUT, STATE),
    S(903, CUDA_ERROR_STREAM_CAPTURE_UNMATCHED, BAD_INPUT, STATE),
    S(904, CUDA_ERROR_STREAM_CAPTURE_UNJOINED, BAD_INPUT, STATE),
    S(905, CUDA_ERROR_STREAM_CAPTURE_ISOLATION, BAD_INPUT, STATE),
    S(906, CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, BAD_INPUT, STATE),
    S(907, CUDA_ERROR_CAPTURED_EVENT, BAD_INPUT, STATE),
    S(908, CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD, BAD_INPUT, STATE),
    S(909, CUDA_ERROR_TIMEOUT, HANG, TIMEOUT),
    S(910, CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE, BAD_INPUT, STATE),
    S(911, CUDA_ERROR_EXTERNAL_DEVICE, DEVICE_LOST, DEVICE_LOST),
    S(912, CUDA_ERROR_INVALID_CLUSTER_SIZE, LAUNCH, LAUNCH),
    S(913, CUDA_ERROR_FUNCTION_NOT_LOADED, LAUNCH, LAUNCH),
    S(914, CUDA_ERROR_INVALID_RESOURCE_TYPE, BAD_INPUT, INVAL),
    S(915, CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION, BAD_INPUT, INVAL),
    S(916, CUDA_ERROR_KEY_ROTATION, DEVICE_LOST, DEVICE_LOST),
    S(999, CUDA_ERROR_UNKNOWN, DRIVER, DRIVER),
};

/* OpenCL cl.h (1.0 .. 3.0). CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST means
 * a command this one waited on failed: the queue's results are invalid and
 * it must be recreated, hence DEVICE_LOST. */
static const status_entry k_cl[] = {
    {0, "CL_SUCCESS", GG_FAIL_NONE, 0},
    S(-1, CL_DEVICE_NOT_FOUND, DRIVER, NODEV),
    S(-2, CL_DEVICE_NOT_AVAILABLE, DRIVER, NODEV),
    S(-3, CL_COMPILER_NOT_AVAILABLE, COMPILE, COMPILE),
    S(-4, CL_MEM_OBJECT_ALLOCATION_FAILURE, OOM, DEV_OOM),
    S(-5, CL_OUT_OF_RESOURCES, OUT_OF_RESOURCES, OUT_OF_RESOURCES),
    S(-6, CL_OUT_OF_HOST_MEMORY, OOM, NOMEM),
    S(-7, CL_PROFILING_INFO_NOT_AVAILABLE, UNSUPPORTED, UNSUPPORTED),
    S(-8, CL_MEM_COPY_OVERLAP, BAD_INPUT, INVAL),
    S(-9, CL_IMAGE_FORMAT_MISMATCH, BAD_INPUT, INVAL),
    S(-10, CL_IMAGE_FORMAT_NOT_SUPPORTED, UNSUPPORTED, UNSUPPORTED),
    S(-11, CL_BUILD_PROGRAM_FAILURE, COMPILE, COMPILE),
    S(-12, CL_MAP_FAILURE, DRIVER, DRIVER),
    S(-13, CL_MISALIGNED_SUB_BUFFER_OFFSET, BAD_INPUT, INVAL),
    S(-14, CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST, DEVICE_LOST, DEVICE_LOST),
    S(-15, CL_COMPILE_PROGRAM_FAILURE, COMPILE, COMPILE),
    S(-16, CL_LINKER_NOT_AVAILABLE, COMPILE, COMPILE),
    S(-17, CL_LINK_PROGRAM_FAILURE, COMPILE, COMPILE),
    S(-18, CL_DEVICE_PARTITION_FAILED, UNSUPPORTED, UNSUPPORTED),
    S(-19, CL_KERNEL_ARG_INFO_NOT_AVAILABLE, UNSUPPORTED, UNSUPPORTED),
    S(-30, CL_INVALID_VALUE, BAD_INPUT, INVAL),
    S(-31, CL_INVALID_DEVICE_TYPE, BAD_INPUT, INVAL),
    S(-32, CL_INVALID_PLATFORM, DRIVER, NODEV),
    S(-33, CL_INVALID_DEVICE, DRIVER, NODEV),
    S(-34, CL_INVALID_CONTEXT, BAD_INPUT, STATE),
    S(-35, CL_INVALID_QUEUE_PROPERTIES, UNSUPPORTED, UNSUPPORTED),
    S(-36, CL_INVALID_COMMAND_QUEUE, DEVICE_LOST, DEVICE_LOST),
    S(-37, CL_INVALID_HOST_PTR, BAD_INPUT, INVAL),
    S(-38, CL_INVALID_MEM_OBJECT, BAD_INPUT, INVAL),
    S(-39, CL_INVALID_IMAGE_FORMAT_DESCRIPTOR, BAD_INPUT, INVAL),
    S(-40, CL_INVALID_IMAGE_SIZE, BAD_INPUT, INVAL),
    S(-41, CL_INVALID_SAMPLER, BAD_INPUT, INVAL),
    S(-42, CL_INVALID_BINARY, COMPILE, COMPILE),
    S(-43, CL_INVALID_BUILD_OPTIONS, COMPILE, COMPILE),
    S(-44, CL_INVALID_PROGRAM, COMPILE, COMPILE),
    S(-45, CL_INVALID_PROGRAM_EXECUTABLE, COMPILE, COMPILE),
    S(-46, CL_INVALID_KERNEL_NAME, LAUNCH, LAUNCH),
    S(-47, CL_INVALID_KERNEL_DEFINITION, COMPILE, COMPILE),
    S(-48, CL_INVALID_KERNEL, LAUNCH, LAUNCH),
    S(-49, CL_INVALID_ARG_INDEX, LAUNCH, LAUNCH),
    S(-50, CL_INVALID_ARG_VALUE, LAUNCH, LAUNCH),
    S(-51, CL_INVALID_ARG_SIZE, LAUNCH, LAUNCH),
    S(-52, CL_INVALID_KERNEL_ARGS, LAUNCH, LAUNCH),
    S(-53, CL_INVALID_WORK_DIMENSION, LAUNCH, LAUNCH),
    S(-54, CL_INVALID_WORK_GROUP_SIZE, LAUNCH, LAUNCH),
    S(-55, CL_INVALID_WORK_ITEM_SIZE, LAUNCH, LAUNCH),
    S(-56, CL_INVALID_GLOBAL_OFFSET, LAUNCH, LAUNCH),
    S(-57, CL_INVALID_EVENT_WAIT_LIST, BAD_INPUT, INVAL),
    S(-58, CL_INVALID_EVENT, BAD_INPUT, INVAL),
    S(-59, CL_INVALID_OPERATION, BAD_INPUT, STATE),
    S(-60, CL_INVALID_GL_OBJECT, BAD_INPUT, INVAL),
    S(-61, CL_INVALID_BUFFER_SIZE, BAD_INPUT, TOO_LARGE),
    S(-62, CL_INVALID_MIP_LEVEL, BAD_INPUT, INVAL),
    S(-63, CL_INVALID_GLOBAL_WORK_SIZE, LAUNCH, LAUNCH),
    S(-64, CL_INVALID_PROPERTY, BAD_INPUT, INVAL),
    S(-65, CL_INVALID_IMAGE_DESCRIPTOR, BAD_INPUT, INVAL),
    S(-66, CL_INVALID_COMPILER_OPTIONS, COMPILE, COMPILE),
    S(-67, CL_INVALID_LINKER_OPTIONS, COMPILE, COMPILE),
    S(-68, CL_INVALID_DEVICE_PARTITION_COUNT, BAD_INPUT, INVAL),
    S(-69, CL_INVALID_PIPE_SIZE, BAD_INPUT, INVAL),
    S(-70, CL_INVALID_DEVICE_QUEUE, BAD_INPUT, INVAL),
    S(-71, CL_INVALID_SPEC_ID, BAD_INPUT, INVAL),
    S(-72, CL_MAX_SIZE_RESTRICTION_EXCEEDED, BAD_INPUT, TOO_LARGE),
    S(-1001, CL_PLATFORM_NOT_FOUND_KHR, DRIVER, NODEV),
};

/* cuDNN 8 (1..14) and cuDNN 9 (1000..5999) status codes. */
static const status_entry k_cudnn[] = {
    {0, "CUDNN_STATUS_SUCCESS", GG_FAIL_NONE, 0},
    S(1, CUDNN_STATUS_NOT_INITIALIZED, DRIVER, DRIVER),
    S(2, CUDNN_STATUS_ALLOC_FAILED, OOM, DEV_OOM),
    S(3, CUDNN_STATUS_BAD_PARAM, BAD_INPUT, INVAL),
    S(4, CUDNN_STATUS_INTERNAL_ERROR, DRIVER, DRIVER),
    S(5, CUDNN_STATUS_INVALID_VALUE, BAD_INPUT, INVAL),
    S(6, CUDNN_STATUS_ARCH_MISMATCH, UNSUPPORTED, UNSUPPORTED),
    S(7, CUDNN_STATUS_MAPPING_ERROR, DRIVER, DRIVER),
    S(8, CUDNN_STATUS_EXECUTION_FAILED, LAUNCH, LAUNCH),
    S(9, CUDNN_STATUS_NOT_SUPPORTED, UNSUPPORTED, UNSUPPORTED),
    S(10, CUDNN_STATUS_LICENSE_ERROR, DRIVER, DRIVER),
    S(11, CUDNN_STATUS_RUNTIME_PREREQUISITE_MISSING, DRIVER, DRIVER),
    S(12, CUDNN_STATUS_RUNTIME_IN_PROGRESS, OUT_OF_RESOURCES, BUSY),
    S(13, CUDNN_STATUS_RUNTIME_FP_OVERFLOW, BAD_INPUT, RANGE),
    S(14, CUDNN_STATUS_VERSION_MISMATCH, DRIVER, DRIVER),
    S(1001, CUDNN_STATUS_NOT_INITIALIZED, DRIVER, DRIVER),
    S(1002, CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH, DRIVER, DRIVER),
    S(1003, CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH, DRIVER, DRIVER),
    S(1004, CUDNN_STATUS_DEPRECATED, UNSUPPORTED, UNSUPPORTED),
    S(1005, CUDNN_STATUS_LICENSE_ERROR, DRIVER, DRIVER),
    S(1006, CUDNN_STATUS_RUNTIME_IN_PROGRESS, OUT_OF_RESOURCES, BUSY),
    S(1007, CUDNN_STATUS_RUNTIME_FP_OVERFLOW, BAD_INPUT, RANGE),
    S(1008, CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED, DRIVER, DRIVER),
    S(2000, CUDNN_STATUS_BAD_PARAM, BAD_INPUT, INVAL),
    S(2002, CUDNN_STATUS_BAD_PARAM_NULL_POINTER, BAD_INPUT, INVAL),
    S(2003, CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER, BAD_INPUT, INVAL),
    S(2004, CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED, BAD_INPUT, INVAL),
    S(2005, CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND, BAD_INPUT, RANGE),
    S(2006, CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT, BAD_INPUT, INVAL),
    S(2007, CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH, BAD_INPUT, INVAL),
    S(2008, CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH, BAD_INPUT, INVAL),
    S(2009, CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES, BAD_INPUT, INVAL),
    S(2010, CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE, BAD_INPUT, INVAL),
    S(2011, CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH, BAD_INPUT, INVAL),
    S(2012, CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE, BAD_INPUT, INVAL),
    S(3000, CUDNN_STATUS_NOT_SUPPORTED, UNSUPPORTED, UNSUPPORTED),
    S(3001, CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN, UNSUPPORTED, UNSUPPORTED),
    S(3002, CUDNN_STATUS_NOT_SUPPORTED_SHAPE, UNSUPPORTED, UNSUPPORTED),
    S(3003, CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, UNSUPPORTED, UNSUPPORTED),
    S(3004, CUDNN_STATUS_NOT_SUPPORTED_LAYOUT, UNSUPPORTED, UNSUPPORTED),
    S(3005, CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER, DRIVER, DRIVER),
    S(3006, CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART, DRIVER, DRIVER),
    S(3007, CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH, UNSUPPORTED, UNSUPPORTED),
    S(3008, CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING, DRIVER, DRIVER),
    S(3009, CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE, DRIVER, DRIVER),
    S(3010, CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT, OUT_OF_RESOURCES,
      OUT_OF_RESOURCES),
    S(3011, CUDNN_STATUS_NOT_SUPPORTED_PADDING, UNSUPPORTED, UNSUPPORTED),
    S(3012, CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM, LAUNCH, LAUNCH),
    S(3013, CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API, UNSUPPORTED, UNSUPPORTED),
    S(3014, CUDNN_STATUS_NOT_SUPPORTED_INVALID_DYNAMIC_SHAPE, UNSUPPORTED, UNSUPPORTED),
    S(4000, CUDNN_STATUS_INTERNAL_ERROR, DRIVER, DRIVER),
    S(4001, CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED, COMPILE, COMPILE),
    S(4002, CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE, DRIVER, DRIVER),
    S(4003, CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED, OOM, NOMEM),
    S(4004, CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED, OOM, DEV_OOM),
    S(4005, CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM, LAUNCH, LAUNCH),
    S(4006, CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED, DRIVER, DRIVER),
    S(5000, CUDNN_STATUS_EXECUTION_FAILED, LAUNCH, LAUNCH),
    S(5001, CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER, DEVICE_LOST, DEVICE_LOST),
    S(5002, CUDNN_STATUS_EXECUTION_FAILED_CUBLAS, LAUNCH, LAUNCH),
    S(5003, CUDNN_STATUS_EXECUTION_FAILED_CUDART, DEVICE_LOST, DEVICE_LOST),
    S(5004, CUDNN_STATUS_EXECUTION_FAILED_CURAND, LAUNCH, LAUNCH),
};

/* cuBLAS (cublas_api.h). NOT_INITIALIZED at handle creation is nearly always
 * an out-of-memory in disguise; it stays DRIVER here, the log table's fix
 * says so. */
static const status_entry k_cublas[] = {
    {0, "CUBLAS_STATUS_SUCCESS", GG_FAIL_NONE, 0},
    S(1, CUBLAS_STATUS_NOT_INITIALIZED, DRIVER, DRIVER),
    S(3, CUBLAS_STATUS_ALLOC_FAILED, OOM, DEV_OOM),
    S(7, CUBLAS_STATUS_INVALID_VALUE, BAD_INPUT, INVAL),
    S(8, CUBLAS_STATUS_ARCH_MISMATCH, UNSUPPORTED, UNSUPPORTED),
    S(11, CUBLAS_STATUS_MAPPING_ERROR, DRIVER, DRIVER),
    S(13, CUBLAS_STATUS_EXECUTION_FAILED, LAUNCH, LAUNCH),
    S(14, CUBLAS_STATUS_INTERNAL_ERROR, DRIVER, DRIVER),
    S(15, CUBLAS_STATUS_NOT_SUPPORTED, UNSUPPORTED, UNSUPPORTED),
    S(16, CUBLAS_STATUS_LICENSE_ERROR, DRIVER, DRIVER),
};
#undef S

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const status_entry *find_code(const status_entry *t, size_t n, int code) {
  for (size_t i = 0; i < n; i++)
    if (t[i].code == code) return &t[i];
  return NULL;
}

gg_fail_class gg_classify_cuda(int r) {
  const status_entry *e = find_code(k_cuda, COUNT(k_cuda), r);
  return e ? e->cls : GG_FAIL_DRIVER;
}
int gg_err_from_cuda(int r) {
  const status_entry *e = find_code(k_cuda, COUNT(k_cuda), r);
  return e ? e->err : GG_EDRIVER;
}
const char *gg_cuda_error_name(int r) {
  const status_entry *e = find_code(k_cuda, COUNT(k_cuda), r);
  return e ? e->name : "CUDA_ERROR_?";
}

gg_fail_class gg_classify_cl(int r) {
  const status_entry *e = find_code(k_cl, COUNT(k_cl), r);
  return e ? e->cls : (r == 0 ? GG_FAIL_NONE : GG_FAIL_DRIVER);
}
int gg_err_from_cl(int r) {
  const status_entry *e = find_code(k_cl, COUNT(k_cl), r);
  return e ? e->err : (r == 0 ? 0 : GG_EDRIVER);
}
const char *gg_cl_error_name(int r) {
  const status_entry *e = find_code(k_cl, COUNT(k_cl), r);
  return e ? e->name : "CL_?";
}

/* cuDNN 9 codes not in the table fall back to their thousands category. */
static const status_entry *find_cudnn(int r) {
  const status_entry *e = find_code(k_cudnn, COUNT(k_cudnn), r);
  if (!e && r >= 1000 && r < 6000) e = find_code(k_cudnn, COUNT(k_cudnn), r / 1000 * 1000);
  if (!e && r >= 1000 && r < 2000) e = find_code(k_cudnn, COUNT(k_cudnn), 1001);
  return e;
}
gg_fail_class gg_classify_cudnn(int r) {
  const status_entry *e = find_cudnn(r);
  return e ? e->cls : GG_FAIL_DRIVER;
}
int gg_err_from_cudnn(int r) {
  const status_entry *e = find_cudnn(r);
  return e ? e->err : GG_EDRIVER;
}
const char *gg_cudnn_status_name(int r) {
  const status_entry *e = find_code(k_cudnn, COUNT(k_cudnn), r);
  return e ? e->name : "CUDNN_STATUS_?";
}

gg_fail_class gg_classify_cublas(int r) {
  const status_entry *e = find_code(k_cublas, COUNT(k_cublas), r);
  return e ? e->cls : GG_FAIL_DRIVER;
}
int gg_err_from_cublas(int r) {
  const status_entry *e = find_code(k_cublas, COUNT(k_cublas), r);
  return e ? e->err : GG_EDRIVER;
}
const char *gg_cublas_status_name(int r) {
  const status_entry *e = find_code(k_cublas, COUNT(k_cublas), r);
  return e ? e->name : "CUBLAS_STATUS_?";
}

static const status_entry *find_name(const char *name) {
  static const struct {
    const char *prefix;
    const status_entry *t;
    size_t n;
  } tabs[] = {
      {"CUDA_", k_cuda, COUNT(k_cuda)},
      {"CUDNN_", k_cudnn, COUNT(k_cudnn)},
      {"CUBLAS_", k_cublas, COUNT(k_cublas)},
      {"CL_", k_cl, COUNT(k_cl)},
  };
  if (!name) return NULL;
  for (size_t k = 0; k < COUNT(tabs); k++) {
    if (strncmp(name, tabs[k].prefix, strlen(tabs[k].prefix))) continue;
    for (size_t i = 0; i < tabs[k].n; i++)
      if (!strcmp(tabs[k].t[i].name, name)) return &tabs[k].t[i];
  }
  return NULL;
}

gg_fail_class gg_classify_status_name(const char *name, int *code) {
  const status_entry *e = find_name(name);
  if (code) *code = e ? e->code : 0;
  return e ? e->cls : GG_FAIL_CLASS_COUNT;
}

/* ---- NVIDIA Xid --------------------------------------------------------- */

typedef struct xid_entry {
  int xid;
  gg_fail_class cls;
  const char *meaning;
} xid_entry;

/* From NVIDIA's "Xid Errors" table (docs.nvidia.com/deploy/xid-errors). */
static const xid_entry k_xids[] = {
    {8, GG_FAIL_HANG, "GPU stopped processing (channel timeout / hang)"},
    {13, GG_FAIL_DEVICE_LOST,
     "Graphics Engine Exception: usually an application out-of-range access or illegal "
     "instruction; the context is dead"},
    {31, GG_FAIL_DEVICE_LOST,
     "GPU memory page fault: the application accessed an illegal address; the context is "
     "dead"},
    {32, GG_FAIL_DRIVER, "invalid or corrupted push buffer stream (driver or PCIe problem)"},
    {43, GG_FAIL_LAUNCH,
     "GPU stopped processing: the application hit a software-induced fault; the GPU itself "
     "is healthy"},
    {45, GG_FAIL_DEVICE_LOST, "preemptive cleanup due to a previous error (process killed)"},
    {48, GG_FAIL_DEVICE_LOST,
     "double-bit ECC error (uncorrectable): the GPU must be reset; if it repeats, the board "
     "is failing"},
    {61, GG_FAIL_DRIVER, "internal micro-controller breakpoint/warning"},
    {62, GG_FAIL_DEVICE_LOST, "internal micro-controller halt: the GPU must be reset"},
    {63, GG_FAIL_DRIVER,
     "ECC page retirement or row-remapping recorded: reset the GPU (or reboot) to apply it"},
    {64, GG_FAIL_DEVICE_LOST,
     "ECC page retirement or row-remapping recording failure: the GPU must be reset; "
     "repeated occurrences mean the board is failing"},
    {68, GG_FAIL_DEVICE_LOST, "video decoder (NVDEC) exception"},
    {69, GG_FAIL_DEVICE_LOST, "graphics engine class error"},
    {74, GG_FAIL_DEVICE_LOST, "NVLink error: the link or GPU must be reset"},
    {79, GG_FAIL_DEVICE_LOST,
     "GPU has fallen off the bus: it no longer answers on PCIe (power, thermal, riser or "
     "hardware failure); reboot and check power and seating"},
    {92, GG_FAIL_DRIVER, "high single-bit ECC error rate"},
    {94, GG_FAIL_DEVICE_LOST,
     "contained ECC error: only the affected application must restart; other processes are "
     "unaffected"},
    {95, GG_FAIL_DEVICE_LOST,
     "uncontained ECC error: every application on the GPU is affected; the GPU must be reset"},
    {109, GG_FAIL_HANG, "context switch timeout"},
    {119, GG_FAIL_HANG, "GSP RPC timeout: the GPU firmware stopped answering; reset the GPU"},
    {120, GG_FAIL_DRIVER, "GSP firmware error"},
    {154, GG_FAIL_DRIVER, "GPU recovery action changed (reset or reboot required)"},
};

const char *gg_xid_meaning(int xid, gg_fail_class *cls) {
  for (size_t i = 0; i < COUNT(k_xids); i++) {
    if (k_xids[i].xid == xid) {
      if (cls) *cls = k_xids[i].cls;
      return k_xids[i].meaning;
    }
  }
  if (cls) *cls = GG_FAIL_DRIVER;
  return NULL;
}

/* ---- log lines ---------------------------------------------------------- */

/* Parses "2.00 GiB", "2.00GiB", "20.00 MiB", "3.82G", "4101898240 bytes". */
static int parse_log_size(const char *p, uint64_t *out) {
  char *end;
  double v = strtod(p, &end);
  if (end == p || v < 0) return 0;
  while (*end == ' ') end++;
  double mul = 1;
  switch (toupper((unsigned char)*end)) {
  case 'K': mul = 1024.0; break;
  case 'M': mul = 1024.0 * 1024; break;
  case 'G': mul = 1024.0 * 1024 * 1024; break;
  case 'T': mul = 1024.0 * 1024 * 1024 * 1024; break;
  case 'B': break;
  default:
    /* a bare number is bytes only when "bytes" follows or it is integral */
    if (v != (double)(uint64_t)v) return 0;
  }
  *out = (uint64_t)(v * mul + 0.5);
  return 1;
}

/* Finds `key` (case-insensitive) and parses the size right after it. */
static int size_after(const char *line, const char *key, uint64_t *out) {
  const char *p = strcasestr(line, key);
  return p ? parse_log_size(p + strlen(key), out) : 0;
}

/* Finds the size right before `key` ("3.82 GiB total capacity"). */
static int size_before(const char *line, const char *key, uint64_t *out) {
  const char *p = strcasestr(line, key);
  if (!p) return 0;
  const char *q = p;
  while (q > line && q[-1] == ' ') q--;
  while (q > line && isalpha((unsigned char)q[-1])) q--; /* unit */
  while (q > line && q[-1] == ' ') q--;
  while (q > line && (isdigit((unsigned char)q[-1]) || q[-1] == '.')) q--;
  return q < p ? parse_log_size(q, out) : 0;
}

/* First upper-case status token with one of the API prefixes, copied to tok. */
static int find_token(const char *line, char *tok, size_t len) {
  static const char *const prefixes[] = {"CUDA_ERROR_", "CUDNN_STATUS_", "CUBLAS_STATUS_",
                                         "CL_"};
  const char *best = NULL;
  for (size_t k = 0; k < COUNT(prefixes); k++) {
    const char *p = line;
    while ((p = strstr(p, prefixes[k]))) {
      /* must start a word: "CL_" inside "OPENCL_X" does not count */
      if (p == line || !(isalnum((unsigned char)p[-1]) || p[-1] == '_')) {
        size_t n = 0;
        while (isupper((unsigned char)p[n]) || isdigit((unsigned char)p[n]) || p[n] == '_') n++;
        if (n < len) {
          char tmp[64];
          memcpy(tmp, p, n);
          tmp[n] = 0;
          if (find_name(tmp) && (!best || p < best)) {
            best = p;
            snprintf(tok, len, "%s", tmp);
          }
        }
      }
      p += strlen(prefixes[k]);
    }
  }
  return best != NULL;
}

typedef struct log_pattern {
  const char *id;
  gg_fail_class cls;
  const char *all[3]; /* every one must occur (case-insensitive); NULL ends */
  const char *any[6]; /* at least one must occur when any[0] is set */
  const char *cause;
  const char *fix;
} log_pattern;

#define FIX_XLA                                                                              \
  "point XLA at the toolkit root that contains nvvm/libdevice/libdevice.10.bc: export "      \
  "XLA_FLAGS=--xla_gpu_cuda_data_dir=/usr/local/cuda (adjust the path; 'gpuguard doctor "   \
  "--write-env gpu.env' writes the right line), or install the CUDA toolkit's nvvm component"
#define FIX_OOM                                                                              \
  "the process asked for more device memory than was free: lower the batch size or input "   \
  "resolution, load fewer models at once, keep gpuguard's memory budget below the free "     \
  "memory 'gpuguard doctor' reports, and for TensorFlow set "                                \
  "TF_FORCE_GPU_ALLOW_GROWTH=true so it does not grab all memory up front"
#define FIX_STICKY                                                                           \
  "the CUDA context is dead after this error: restart the process (gpuguard resets the "     \
  "device or restarts its worker automatically); run with CUDA_LAUNCH_BLOCKING=1 to find the " \
  "kernel, and check 'dmesg | grep -i xid' for a hardware cause"

/* Checked in order; the first match wins, so specific patterns come first. */
static const log_pattern k_patterns[] = {
    {"xla-libdevice", GG_FAIL_COMPILE, {"libdevice"}, {"not found", "can't find", "cannot find",
     "couldn't find", "no such file", "unable to find"},
     "XLA's JIT could not find libdevice.10.bc: CUDA_HOME/XLA_FLAGS point to a directory "
     "without nvvm/libdevice", FIX_XLA},
    {"xla-ptxas", GG_FAIL_COMPILE, {"ptxas"}, {"not found", "couldn't", "could not",
     "unable to", "no such file"},
     "XLA/TensorFlow could not run ptxas to compile PTX for this GPU",
     "put the toolkit's bin directory on PATH (export PATH=/usr/local/cuda/bin:$PATH) or set "
     "XLA_FLAGS=--xla_gpu_cuda_data_dir to the toolkit root"},
    /* TensorFlow's error after a JIT failure names the op's node; with a missing
     * libdevice it is the only line of the traceback users paste. */
    {"xla-jit-failed", GG_FAIL_COMPILE, {"JIT compilation failed"}, {0},
     "XLA could not JIT-compile an op for the GPU; right after a missing libdevice (or ptxas) "
     "this is that failure surfacing at the first op that needs it (often a BatchNorm)",
     FIX_XLA},
    {"cuda-driver-too-old", GG_FAIL_DRIVER, {0}, {"driver version is insufficient",
     "cudaErrorInsufficientDriver", "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
     "CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER", "forward compatibility was attempted"},
     "the NVIDIA driver is older than the CUDA runtime the application was built with",
     "install a driver that supports this CUDA version (nvidia-smi shows the highest CUDA it "
     "supports) or use a toolkit/framework build for the CUDA version the driver supports; "
     "'gpuguard doctor' compares both"},
    {"cuda-no-device", GG_FAIL_DRIVER, {0}, {"no CUDA-capable device is detected",
     "CUDA_ERROR_NO_DEVICE", "cudaErrorNoDevice", "failed call to cuInit",
     "no CUDA GPUs are available", "Found no NVIDIA driver"},
     "the CUDA driver API found no usable GPU: no driver loaded, /dev/nvidia* missing or not "
     "accessible, or CUDA_VISIBLE_DEVICES hides every device",
     "check 'gpuguard doctor' (driver, /dev/nvidia*, CUDA_VISIBLE_DEVICES); unset "
     "CUDA_VISIBLE_DEVICES or set it to a valid index; add the user to the 'video' group"},
    {"cuda-oom", GG_FAIL_OOM, {0}, {"CUDA out of memory", "OutOfMemoryError",
     "CUDA_ERROR_OUT_OF_MEMORY", "cudaErrorMemoryAllocation", "ran out of memory trying to allocate",
     "OOM when allocating"},
     "the GPU had not enough free memory for an allocation", FIX_OOM},
    {"cuda-oom", GG_FAIL_OOM, {"CUDA", "out of memory"}, {0},
     "the GPU had not enough free memory for an allocation", FIX_OOM},
    {"tf-resource-exhausted", GG_FAIL_OOM, {"ResourceExhausted"}, {0},
     "TensorFlow could not allocate a tensor on the GPU", FIX_OOM},
    {"cuda-device-assert", GG_FAIL_DEVICE_LOST, {"device-side assert"}, {0},
     "a kernel hit a device-side assert (typically an index out of range); the context is dead",
     FIX_STICKY},
    {"cuda-illegal-address", GG_FAIL_DEVICE_LOST, {0}, {"illegal memory access",
     "CUDA_ERROR_ILLEGAL_ADDRESS", "cudaErrorIllegalAddress", "misaligned address",
     "illegal instruction", "hardware stack error"},
     "a kernel accessed memory it does not own; the CUDA context is dead (sticky error)",
     FIX_STICKY},
    {"cuda-launch-failure", GG_FAIL_DEVICE_LOST, {0}, {"unspecified launch failure",
     "CUDA_ERROR_LAUNCH_FAILED", "cudaErrorLaunchFailure"},
     "a kernel crashed on the device (unspecified launch failure); the context is dead",
     FIX_STICKY},
    {"cuda-launch-timeout", GG_FAIL_HANG, {0}, {"launch timed out",
     "CUDA_ERROR_LAUNCH_TIMEOUT", "cudaErrorLaunchTimeout"},
     "a kernel ran longer than the display watchdog allows and was killed",
     "run on a GPU without a display attached (or disable the X watchdog), and split work "
     "into smaller launches; gpuguard's worker watchdog restarts the worker"},
    {"cuda-launch-resources", GG_FAIL_OUT_OF_RESOURCES, {0}, {"too many resources requested",
     "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "cudaErrorLaunchOutOfResources"},
     "a kernel asked for more registers or shared memory than the GPU has",
     "use a smaller block size, or a build compiled for this GPU's compute capability"},
    {"cuda-no-kernel-image", GG_FAIL_COMPILE, {0}, {"no kernel image is available",
     "CUDA_ERROR_NO_BINARY_FOR_GPU", "cudaErrorNoKernelImageForDevice",
     "CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "CUDA_ERROR_INVALID_PTX"},
     "the application has no code for this GPU's compute capability (or its PTX is newer than "
     "the driver's JIT)",
     "install a build that targets this GPU's compute capability (gpuguard doctor shows it), or "
     "update the driver so it can JIT the PTX"},
    {"nvidia-xid", GG_FAIL_DEVICE_LOST, {"Xid"}, {"NVRM", "Xid (", "Xid:"},
     "the NVIDIA kernel driver reported an Xid error", ""},
    {"cudnn-init", GG_FAIL_DRIVER, {0}, {"Could not create cudnn handle",
     "cuDNN failed to initialize", "Failed to get convolution algorithm"},
     "cuDNN could not initialise; with TensorFlow this is most often the GPU memory already "
     "taken by another process or by TF's up-front allocation, otherwise a cuDNN/CUDA version "
     "mismatch",
     "set TF_FORCE_GPU_ALLOW_GROWTH=true, make sure no other process holds the GPU "
     "(nvidia-smi), and install the cuDNN version the framework was built against"},
    {"opencl-queue", GG_FAIL_DEVICE_LOST, {0}, {"clFlush", "clFinish", "clWaitForEvents"},
     "the OpenCL command queue failed while flushing or waiting: an earlier command (usually a "
     "kernel) failed or the driver reset the device",
     "recreate the OpenCL context and queue (gpuguard resets the device); if it repeats, lower "
     "the work size and check the driver log (dmesg)"},
    {"cudnn-status", GG_FAIL_DRIVER, {"CUDNN_STATUS_"}, {0}, "cuDNN returned an error status",
     ""},
    {"cublas-status", GG_FAIL_DRIVER, {"CUBLAS_STATUS_"}, {0}, "cuBLAS returned an error status",
     ""},
    {"opencl-status", GG_FAIL_DRIVER, {"CL_"}, {0}, "an OpenCL call returned an error", ""},
    {"cuda-status", GG_FAIL_DRIVER, {"CUDA_ERROR_"}, {0}, "a CUDA driver call returned an error",
     ""},
};

/* The needles of k_patterns in lower case, made once: matching is strstr()
 * on the lowercased line, several times faster than strcasestr, and the ~60
 * needles run over every byte of every line. */
typedef struct low_pattern {
  char all[3][48];
  char any[6][48];
  size_t all_len[3], any_len[6]; /* a needle longer than the line cannot match */
} low_pattern;
static low_pattern g_low[COUNT(k_patterns)];
static pthread_once_t g_low_once = PTHREAD_ONCE_INIT;

/* Copies s lowercased into dst; returns its length. */
static size_t lower_into(char *dst, size_t len, const char *s) {
  assert(!s || strlen(s) < len); /* a cut needle would match too much: make the field longer */
  size_t i = 0;
  for (; s && s[i] && i + 1 < len; i++) dst[i] = (char)tolower((unsigned char)s[i]);
  dst[i] = 0;
  return i;
}

static void make_low_patterns(void) {
  for (size_t k = 0; k < COUNT(k_patterns); k++) {
    low_pattern *l = &g_low[k];
    for (int i = 0; i < 3; i++)
      l->all_len[i] = lower_into(l->all[i], sizeof l->all[i], k_patterns[k].all[i]);
    for (int i = 0; i < 6; i++)
      l->any_len[i] = lower_into(l->any[i], sizeof l->any[i], k_patterns[k].any[i]);
  }
}

static int pattern_matches(const low_pattern *p, const char *low, size_t len) {
  for (int i = 0; i < 3 && p->all_len[i]; i++)
    if (p->all_len[i] > len || !strstr(low, p->all[i])) return 0;
  if (!p->any_len[0]) return 1;
  for (int i = 0; i < 6 && p->any_len[i]; i++)
    if (p->any_len[i] <= len && strstr(low, p->any[i])) return 1;
  return 0;
}

/* Per-token cause/fix for the generic status patterns. */
static const char *status_fix(gg_fail_class c, const char *token) {
  if (!strcmp(token, "CUBLAS_STATUS_NOT_INITIALIZED"))
    return "cuBLAS could not create its handle, almost always because the GPU memory was "
           "already exhausted: set TF_FORCE_GPU_ALLOW_GROWTH=true or free the GPU, then retry";
  if (!strcmp(token, "CL_OUT_OF_RESOURCES"))
    return "the OpenCL device could not run the command (on NVIDIA this is also how a crashed "
           "kernel or a watchdog kill is reported): lower work-group/global sizes, recreate "
           "the queue, and check dmesg for Xid errors";
  if (!strcmp(token, "CL_MEM_OBJECT_ALLOCATION_FAILURE"))
    return "the OpenCL device could not back a buffer with memory: use smaller buffers (at "
           "most CL_DEVICE_MAX_MEM_ALLOC_SIZE each) or fewer models at once";
  switch (c) {
  case GG_FAIL_OOM: return FIX_OOM;
  case GG_FAIL_DEVICE_LOST: return FIX_STICKY;
  default: return gg_fail_class_advice(c);
  }
}

/* Parses the Xid number: "NVRM: Xid (PCI:0000:01:00): 79, pid=..." */
static int parse_xid(const char *line) {
  const char *p = strstr(line, "Xid");
  if (!p) return 0;
  p += 3;
  const char *close = strstr(p, "):");
  if (close && close - p < 40) p = close + 2;
  while (*p == ' ' || *p == ':') p++;
  return isdigit((unsigned char)*p) ? atoi(p) : 0;
}

/* An OpenCL code printed as a number after the failing call ("clFlush
 * failed: -36", "returned -5", "error -14"). */
static int parse_cl_code(const char *line, int *code) {
  for (const char *p = line; *p; p++) {
    if (*p == '-' && isdigit((unsigned char)p[1]) && (p == line || !isalnum((unsigned char)p[-1]))) {
      int v = -atoi(p + 1);
      if (find_code(k_cl, COUNT(k_cl), v)) {
        *code = v;
        return 1;
      }
    }
  }
  return 0;
}

static void append_detail(gg_log_match *m, const char *prefix, const char *s) {
  size_t n = strlen(m->detail);
  if (n >= sizeof m->detail - 1) return;
  snprintf(m->detail + n, sizeof m->detail - n, "%s%s%s", n ? "; " : "", prefix, s);
}

/* Appends prefix + the text after `key` up to one of `stop` (at most 199
 * bytes) to the detail; returns 0 when key is not on the line. */
static int detail_after(gg_log_match *m, const char *line, const char *key, const char *stop,
                        const char *prefix) {
  const char *p = strstr(line, key);
  if (!p) return 0;
  p += strlen(key);
  char v[200];
  size_t n = strcspn(p, stop);
  if (n >= sizeof v) n = sizeof v - 1;
  memcpy(v, p, n);
  v[n] = 0;
  append_detail(m, prefix, v);
  return 1;
}

static void extract_oom_sizes(const char *line, gg_log_match *m) {
  char a[32], b[32], c[32];
  uint64_t v;
  if (size_after(line, "Tried to allocate ", &v) || size_after(line, "trying to allocate ", &v) ||
      size_after(line, "failed to allocate ", &v))
    m->requested_bytes = v;
  if (size_before(line, " total capacity", &v) || size_after(line, "total capacity of ", &v))
    m->total_bytes = v;
  if (size_after(line, "of which ", &v) || size_before(line, " free;", &v) ||
      size_before(line, " free)", &v) || size_before(line, " is free", &v))
    m->free_bytes = v;
  /* "failed to allocate 3.82G (4101898240 bytes)" / "(rounded to 2147483648)": exact bytes */
  const char *paren = strstr(line, "bytes)");
  if (m->requested_bytes && paren) {
    const char *q = paren;
    while (q > line && q[-1] == ' ') q--;
    while (q > line && isdigit((unsigned char)q[-1])) q--;
    if (isdigit((unsigned char)*q)) m->requested_bytes = strtoull(q, NULL, 10);
  }
  if (m->requested_bytes)
    append_detail(m, "tried to allocate ", gg_format_size(m->requested_bytes, a, sizeof a));
  if (m->free_bytes) append_detail(m, gg_format_size(m->free_bytes, b, sizeof b), " free");
  if (m->total_bytes)
    append_detail(m, gg_format_size(m->total_bytes, c, sizeof c), " total");
  const char *shape = strstr(line, "shape[");
  if (shape) {
    char sh[96];
    size_t n = strcspn(shape, "] ");
    if (n > sizeof sh - 2) n = sizeof sh - 2;
    memcpy(sh, shape, n);
    sh[n] = shape[n] == ']' ? ']' : 0;
    sh[n + 1] = 0;
    append_detail(m, "tensor ", sh);
  }
}

/* line: NUL-free text of len bytes; low: the same in lower case. */
static int classify_line(const char *line, const char *low, size_t len, gg_log_match *out) {
  const log_pattern *hit = NULL;
  for (size_t i = 0; i < COUNT(k_patterns); i++) {
    if (pattern_matches(&g_low[i], low, len)) {
      hit = &k_patterns[i];
      break;
    }
  }
  if (!hit) return 0;
  out->id = hit->id;
  out->cls = hit->cls;
  out->cause = hit->cause;
  out->fix = hit->fix;
  int have_tok = find_token(line, out->token, sizeof out->token);
  if (have_tok) gg_classify_status_name(out->token, &out->code);

  if (!strcmp(hit->id, "xla-libdevice")) {
    detail_after(out, line, "directory ", " \t\r\n'\"", "looked in ");
  } else if (!strcmp(hit->id, "xla-jit-failed")) {
    if (!detail_after(out, line, "Node: '", "'", "node "))
      detail_after(out, line, "{{node ", "}", "node ");
  } else if (hit->cls == GG_FAIL_OOM) {
    extract_oom_sizes(line, out);
  } else if (!strcmp(hit->id, "nvidia-xid")) {
    int xid = parse_xid(line);
    gg_fail_class cls = GG_FAIL_DRIVER;
    const char *meaning = xid ? gg_xid_meaning(xid, &cls) : NULL;
    out->code = xid;
    out->cls = cls;
    char buf[240];
    snprintf(buf, sizeof buf, "Xid %d: %s", xid, meaning ? meaning : "not in gpuguard's Xid table");
    append_detail(out, "", buf);
    out->fix = cls == GG_FAIL_HANG ? gg_fail_class_advice(cls)
               : cls == GG_FAIL_DEVICE_LOST
                   ? "reset the GPU (nvidia-smi -r, or reboot) and restart the application; if "
                     "the same Xid repeats, check power, cooling and seating and test the board"
                   : "check 'dmesg | grep -i xid' and the NVIDIA Xid table; update the driver";
  } else if (!strcmp(hit->id, "opencl-queue")) {
    int code = 0;
    if (have_tok || parse_cl_code(line, &code)) {
      if (!have_tok) {
        out->code = code;
        snprintf(out->token, sizeof out->token, "%s", gg_cl_error_name(code));
      }
      gg_fail_class c = gg_classify_cl(out->code);
      /* a queue call failing with a resource/oom code keeps that class */
      if (c == GG_FAIL_OOM || c == GG_FAIL_OUT_OF_RESOURCES || c == GG_FAIL_DEVICE_LOST) out->cls = c;
      if (c == GG_FAIL_OOM || c == GG_FAIL_OUT_OF_RESOURCES) out->fix = status_fix(c, out->token);
    }
  } else if (!strcmp(hit->id, "cudnn-status") || !strcmp(hit->id, "cublas-status") ||
             !strcmp(hit->id, "opencl-status") || !strcmp(hit->id, "cuda-status")) {
    if (!have_tok) {
      memset(out, 0, sizeof *out);
      return 0; /* a prefix without a known status name ("CL_DEVICE_TYPE") */
    }
    out->cls = gg_classify_status_name(out->token, NULL);
    if (out->cls == GG_FAIL_NONE) {
      memset(out, 0, sizeof *out);
      return 0; /* "CUDA_SUCCESS" is not a failure */
    }
    out->fix = status_fix(out->cls, out->token);
    if (out->cls == GG_FAIL_OOM) extract_oom_sizes(line, out);
  }
  if (out->token[0] && !strstr(out->detail, out->token)) append_detail(out, "status ", out->token);
  return 1;
}

int gg_classify_log_bytes(const char *line, size_t len, gg_log_match *out) {
  if (!out) return 0;
  memset(out, 0, sizeof *out);
  if (!line) len = 0;
  if (len > GG_LOG_LINE_MAX) len = GG_LOG_LINE_MAX;
  /* The line as C strings, as is and lowercased; a NUL inside would end it early. */
  char *s = malloc(2 * (len + 1));
  if (!s) return 0;
  char *low = s + len + 1;
  for (size_t i = 0; i < len; i++) {
    s[i] = line[i] ? line[i] : ' ';
    low[i] = (char)tolower((unsigned char)s[i]);
  }
  s[len] = low[len] = 0;
  pthread_once(&g_low_once, make_low_patterns);
  int hit = classify_line(s, low, len, out);
  free(s);
  return hit;
}

int gg_classify_log_line(const char *line, gg_log_match *out) {
  return gg_classify_log_bytes(line, line ? strlen(line) : 0, out);
}
