"""fmnist_core turns TensorFlow's oneDNN kernels on unless the user chose otherwise."""

import os
import subprocess
import sys

import pytest

PROBE = ("import fmnist_core, tensorflow\n"
         "from tensorflow.python.util import _pywrap_util_port as port\n"
         "print(port.IsMklEnabled())")


@pytest.mark.parametrize(("user_setting", "expected"), [(None, "True"), ("0", "False")])
def test_onednn_on_by_default_and_the_users_setting_wins(user_setting, expected):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if user_setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = user_setting
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == expected


def test_the_step_benchmark_times_steps_with_onednn_on():
    # bench.step_profile imports TensorFlow inside its measuring function: fmnist_core must load before it.
    probe = PROBE.replace("import fmnist_core, tensorflow", "import bench.step_profile, tensorflow")
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "True"
