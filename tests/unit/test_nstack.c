/* Merging native and Python stacks: which native frames are the eval loop, and the order. */
#include "test.h"

#include "profiler/cpython/layout.h"
#include "profiler/sampling/nstack.h"

/* Runs the merge and compares with want (terminated by INT32_MAX). */
static void check_order(const uint8_t *is_eval, size_t nn, const uint8_t *entry, size_t np,
                        const int32_t *want, int want_mismatch)
{
    int32_t order[64];
    int mismatch = -1;
    size_t n = nstack_merge_order(is_eval, nn, entry, np, order, 64, &mismatch);
    size_t k = 0;
    while (want[k] != INT32_MAX)
        k++;
    CHECK_INT(n, k);
    for (size_t i = 0; i < n && i < k; i++)
        CHECK_INT(order[i], want[i]);
    CHECK_INT(mismatch, want_mismatch);
}

TEST(eval_function_names)
{
    const char *eval3 = layout_for(3, 11)->eval_function, *eval2 = layout_for(2, 7)->eval_function;
    CHECK_INT(nstack_is_eval("_PyEval_EvalFrameDefault", eval3), 1);
    CHECK_INT(nstack_is_eval("_PyEval_EvalFrameDefault.cold", eval3), 1);
    CHECK_INT(nstack_is_eval("_PyEval_EvalFrameDefaultX", eval3), 0);
    CHECK_INT(nstack_is_eval("PyEval_EvalFrameEx", eval3), 0);
    CHECK_INT(nstack_is_eval("PyEval_EvalFrameEx", eval2), 1);
    CHECK_INT(nstack_is_eval("_PyEval_EvalFrameDefault", eval2), 0);
    CHECK_INT(nstack_is_eval(NULL, eval3), 0);
    CHECK_INT(nstack_is_eval("PyEval_EvalFrameEx", NULL), 0);
    for (int minor = 6; minor <= 13; minor++)
        CHECK_STR(layout_for(3, minor)->eval_function, "_PyEval_EvalFrameDefault");
}

TEST(one_frame_per_eval_call)
{
    /* clock_nanosleep, time_sleep, eval, call, eval, main */
    const uint8_t ev[] = {0, 0, 1, 0, 1, 0};
    const uint8_t en[] = {1, 1};
    const int32_t want[] = {-1, -2, 0, -4, 1, -6, INT32_MAX};
    check_order(ev, 6, en, 2, want, 0);
}

TEST(one_eval_call_runs_inlined_frames)
{
    /* 3.11+: the leaf C function, one eval call running frames 0-2 (2 entered
     * from C), a C call, another eval call running 3-4. */
    const uint8_t ev[] = {0, 1, 0, 1, 0};
    const uint8_t en[] = {0, 0, 1, 0, 1};
    const int32_t want[] = {-1, 0, 1, 2, -3, 3, 4, -5, INT32_MAX};
    check_order(ev, 5, en, 5, want, 0);
}

TEST(eval_calls_beyond_python_frames_stay_native)
{
    const uint8_t ev[] = {1, 1, 0};
    const uint8_t en[] = {1};
    const int32_t want[] = {0, -2, -3, INT32_MAX};
    check_order(ev, 3, en, 1, want, 1);
}

TEST(python_frames_left_go_outermost)
{
    /* The unwind stopped early: the Python frames it did not reach are kept. */
    const uint8_t ev[] = {0, 1};
    const uint8_t en[] = {1, 1, 1};
    const int32_t want[] = {-1, 0, 1, 2, INT32_MAX};
    check_order(ev, 2, en, 3, want, 1);
}

TEST(no_native_or_no_python)
{
    const uint8_t en[] = {0, 1};
    const int32_t want_py[] = {0, 1, INT32_MAX};
    check_order(NULL, 0, en, 2, want_py, 1);
    const uint8_t ev[] = {0, 0};
    const int32_t want_c[] = {-1, -2, INT32_MAX};
    check_order(ev, 2, NULL, 0, want_c, 0);
}

TEST(bounded_by_max)
{
    const uint8_t ev[] = {0, 1, 0};
    const uint8_t en[] = {0, 0, 0, 1};
    int32_t order[3];
    int mismatch;
    CHECK_INT(nstack_merge_order(ev, 3, en, 4, order, 3, &mismatch), 3);
    CHECK_INT(order[0], -1);
    CHECK_INT(order[1], 0);
    CHECK_INT(order[2], 1);
}
