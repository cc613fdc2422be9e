#include <oneapi/dnnl/dnnl.h>

/* Argument indices as constants: oneDNN defines them as macros of macros, which Swift does not
   always import. */
static const int darkroom_arg_src = DNNL_ARG_SRC;
static const int darkroom_arg_dst = DNNL_ARG_DST;
static const int darkroom_arg_weights = DNNL_ARG_WEIGHTS;
static const int darkroom_arg_mean = DNNL_ARG_MEAN;
static const int darkroom_arg_variance = DNNL_ARG_VARIANCE;
static const int darkroom_arg_scale = DNNL_ARG_SCALE;
static const int darkroom_arg_shift = DNNL_ARG_SHIFT;
static const int darkroom_arg_diff_src = DNNL_ARG_DIFF_SRC;
static const int darkroom_arg_diff_dst = DNNL_ARG_DIFF_DST;
static const int darkroom_arg_diff_weights = DNNL_ARG_DIFF_WEIGHTS;
static const int darkroom_arg_diff_scale = DNNL_ARG_DIFF_SCALE;
static const int darkroom_arg_diff_shift = DNNL_ARG_DIFF_SHIFT;
