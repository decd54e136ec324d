/*
 * The asyncio layout table (asyncio.h): offsets measured by
 * tools/probe-asyncio.py in pyenv's 3.7.16-3.13.0, Debian's 3.11 and
 * Debian unstable's 3.13, 3.14 and 3.15 (equal where two interpreters
 * share a minor version).  The interpreter's list of tasks (3.14+) is
 * offsetof(PyInterpreterState, asyncio_tasks_head) from the python3.14-dev
 * and python3.15-dev headers (the probe cannot reach it from Python).
 */
#include "profiler/cpython/asyncio.h"

static const struct asyncio_layout table[] = {
    {3, 7, /* measured on 3.7 */
     .future_size = 104, .task_size = 136,
     .fut_loop = 16, .fut_callback0 = 24, .fut_callbacks = 40, .fut_result = 56, .fut_state = 72,
     .task_fut_waiter = 104, .task_coro = 112, .task_name = -1, .task_node = -1,
     .futureiter_future = 16, .wakeup_task = 16, .wakeup_type = "TaskWakeupMethWrapper",
     .gen_frame = 16, .gen_iframe = -1, .gen_frame_state = -1,
     .gen_state_created = 0, .gen_state_awaiting = 0, .gen_state_running = 0,
     .fo_stacktop = 72, .fo_valuestack = 64, .fo_stackdepth = -1, .fo_state = -1,
     .if_localsplus = -1, .if_stacktop = -1, .if_stackpointer = -1, .yf_below = 1,
     .ts_running_task = -1, .ts_tasks_head = -1, .is_tasks_head = -1},
    {3, 8, /* measured on 3.8 */
     .future_size = 104, .task_size = 144,
     .fut_loop = 16, .fut_callback0 = 24, .fut_callbacks = 40, .fut_result = 56, .fut_state = 72,
     .task_fut_waiter = 104, .task_coro = 112, .task_name = 120, .task_node = -1,
     .futureiter_future = 16, .wakeup_task = 16, .wakeup_type = "TaskWakeupMethWrapper",
     .gen_frame = 16, .gen_iframe = -1, .gen_frame_state = -1,
     .gen_state_created = 0, .gen_state_awaiting = 0, .gen_state_running = 0,
     .fo_stacktop = 72, .fo_valuestack = 64, .fo_stackdepth = -1, .fo_state = -1,
     .if_localsplus = -1, .if_stacktop = -1, .if_stackpointer = -1, .yf_below = 1,
     .ts_running_task = -1, .ts_tasks_head = -1, .is_tasks_head = -1},
    {3, 9, /* measured on 3.9 */
     .future_size = 144, .task_size = 184,
     .fut_loop = 16, .fut_callback0 = 24, .fut_callbacks = 40, .fut_result = 56, .fut_state = 80,
     .task_fut_waiter = 144, .task_coro = 152, .task_name = 160, .task_node = -1,
     .futureiter_future = 16, .wakeup_task = 16, .wakeup_type = "TaskWakeupMethWrapper",
     .gen_frame = 16, .gen_iframe = -1, .gen_frame_state = -1,
     .gen_state_created = 0, .gen_state_awaiting = 0, .gen_state_running = 0,
     .fo_stacktop = 72, .fo_valuestack = 64, .fo_stackdepth = -1, .fo_state = -1,
     .if_localsplus = -1, .if_stacktop = -1, .if_stackpointer = -1, .yf_below = 1,
     .ts_running_task = -1, .ts_tasks_head = -1, .is_tasks_head = -1},
    {3, 10, /* measured on 3.10 */
     .future_size = 152, .task_size = 192,
     .fut_loop = 16, .fut_callback0 = 24, .fut_callbacks = 40, .fut_result = 64, .fut_state = 88,
     .task_fut_waiter = 152, .task_coro = 160, .task_name = 168, .task_node = -1,
     .futureiter_future = 16, .wakeup_task = 24, .wakeup_type = "builtin_function_or_method",
     .gen_frame = 16, .gen_iframe = -1, .gen_frame_state = -1,
     .gen_state_created = -2, .gen_state_awaiting = -1, .gen_state_running = 0,
     .fo_stacktop = -1, .fo_valuestack = 64, .fo_stackdepth = 80, .fo_state = 108,
     .if_localsplus = -1, .if_stacktop = -1, .if_stackpointer = -1, .yf_below = 1,
     .ts_running_task = -1, .ts_tasks_head = -1, .is_tasks_head = -1},
    {3, 11, /* measured on 3.11 */
     .future_size = 128, .task_size = 176,
     .fut_loop = 16, .fut_callback0 = 24, .fut_callbacks = 40, .fut_result = 64, .fut_state = 88,
     .task_fut_waiter = 128, .task_coro = 136, .task_name = 144, .task_node = -1,
     .futureiter_future = 16, .wakeup_task = 24, .wakeup_type = "builtin_function_or_method",
     .gen_frame = -1, .gen_iframe = 80, .gen_frame_state = 75,
     .gen_state_created = -2, .gen_state_awaiting = -1, .gen_state_running = 0,
     .fo_stacktop = -1, .fo_valuestack = -1, .fo_stackdepth = -1, .fo_state = -1,
     .if_localsplus = 72, .if_stacktop = 64, .if_stackpointer = -1, .yf_below = 1,
     .ts_running_task = -1, .ts_tasks_head = -1, .is_tasks_head = -1},
    {3, 12, /* measured on 3.12 */
     .future_size = 128, .task_size = 176,
     .fut_loop = 16, .fut_callback0 = 24, .fut_callbacks = 40, .fut_result = 64, .fut_state = 88,
     .task_fut_waiter = 128, .task_coro = 136, .task_name = 144, .task_node = -1,
     .futureiter_future = 16, .wakeup_task = 24, .wakeup_type = "builtin_function_or_method",
     .gen_frame = -1, .gen_iframe = 72, .gen_frame_state = 67,
     .gen_state_created = -2, .gen_state_awaiting = -1, .gen_state_running = 0,
     .fo_stacktop = -1, .fo_valuestack = -1, .fo_stackdepth = -1, .fo_state = -1,
     .if_localsplus = 72, .if_stacktop = 64, .if_stackpointer = -1, .yf_below = 1,
     .ts_running_task = -1, .ts_tasks_head = -1, .is_tasks_head = -1},
    {3, 13, /* measured on 3.13 */
     .future_size = 104, .task_size = 144,
     .fut_loop = 16, .fut_callback0 = 24, .fut_callbacks = 40, .fut_result = 64, .fut_state = 96,
     .task_fut_waiter = 112, .task_coro = 120, .task_name = 128, .task_node = -1,
     .futureiter_future = 16, .wakeup_task = 24, .wakeup_type = "builtin_function_or_method",
     .gen_frame = -1, .gen_iframe = 72, .gen_frame_state = 67,
     .gen_state_created = -3, .gen_state_awaiting = -1, .gen_state_running = 0,
     .fo_stacktop = -1, .fo_valuestack = -1, .fo_stackdepth = -1, .fo_state = -1,
     .if_localsplus = 72, .if_stacktop = 64, .if_stackpointer = -1, .yf_below = 1,
     .ts_running_task = -1, .ts_tasks_head = -1, .is_tasks_head = -1},
    {3, 14, /* measured on 3.14 */
     .future_size = 112, .task_size = 168,
     .fut_loop = 16, .fut_callback0 = 24, .fut_callbacks = 40, .fut_result = 64, .fut_state = 104,
     .task_fut_waiter = 120, .task_coro = 128, .task_name = 136, .task_node = 152,
     .futureiter_future = 16, .wakeup_task = 24, .wakeup_type = "builtin_function_or_method",
     .gen_frame = -1, .gen_iframe = 72, .gen_frame_state = 67,
     .gen_state_created = -3, .gen_state_awaiting = -1, .gen_state_running = 0,
     .fo_stacktop = -1, .fo_valuestack = -1, .fo_stackdepth = -1, .fo_state = -1,
     .if_localsplus = 80, .if_stacktop = -1, .if_stackpointer = 64, .yf_below = 1,
     .ts_running_task = 872, .ts_tasks_head = 880, .is_tasks_head = 10880},
    {3, 15, /* measured on 3.15 */
     .future_size = 112, .task_size = 168,
     .fut_loop = 16, .fut_callback0 = 24, .fut_callbacks = 40, .fut_result = 64, .fut_state = 104,
     .task_fut_waiter = 120, .task_coro = 128, .task_name = 136, .task_node = 152,
     .futureiter_future = 16, .wakeup_task = 24, .wakeup_type = "builtin_function_or_method",
     .gen_frame = -1, .gen_iframe = 72, .gen_frame_state = 67,
     .gen_state_created = 0, .gen_state_awaiting = 2, .gen_state_running = 4,
     .fo_stacktop = -1, .fo_valuestack = -1, .fo_stackdepth = -1, .fo_state = -1,
     .if_localsplus = 80, .if_stacktop = -1, .if_stackpointer = 64, .yf_below = 2,
     .ts_running_task = 1032, .ts_tasks_head = 1048, .is_tasks_head = 10856},
};

const struct asyncio_layout *asyncio_layout_for(int major, int minor)
{
    size_t n = sizeof(table) / sizeof(table[0]);
    if (major != 3 || minor < table[0].minor)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (table[i].minor == minor)
            return &table[i];
    return minor > table[n - 1].minor ? &table[n - 1] : NULL;
}
