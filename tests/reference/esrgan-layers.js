// The @upscalerjs ESRGAN layers for TensorFlow.js under Node, shared by
// layers-run.js (the reference of tests/test-layers-reference.c) and
// layers-bench.js (bench/bench-upscale.sh): the custom layers registered
// the way the packages define them (packages/shared/src/esrgan/esrgan.ts, in
// each package's dist/cjs/packages/shared/src/esrgan/esrgan.js):
// MultiplyBeta multiplies by a constant 0.2, PixelShuffle<N>x is
// tf.depthToSpace(x, N, 'NHWC'); and a layers model read from disk.
'use strict';

const { readArtifacts } = require('./model-io');

function registerCustomLayers(tf) {
  const BETA = 0.2;
  const getInput = (inputs) => (Array.isArray(inputs) ? inputs[0] : inputs);
  class MultiplyBeta extends tf.layers.Layer {
    constructor() {
      super({});
      this.beta = BETA;
    }
    call(inputs) {
      return tf.mul(getInput(inputs), this.beta);
    }
    static get className() {
      return 'MultiplyBeta';
    }
  }
  tf.serialization.registerClass(MultiplyBeta);
  for (const scale of [2, 3, 4, 8]) {
    class PixelShuffle extends tf.layers.Layer {
      constructor() {
        super({});
        this.scale = scale;
      }
      computeOutputShape(inputShape) {
        return [inputShape[0], inputShape[1], inputShape[2], 3];
      }
      call(inputs) {
        return tf.depthToSpace(getInput(inputs), this.scale, 'NHWC');
      }
      static get className() {
        return `PixelShuffle${scale}x`;
      }
    }
    tf.serialization.registerClass(PixelShuffle);
  }
}

// Reads model.json and its shards from disk (no fetch under Node).
async function loadLayersModel(tf, modelJson) {
  const artifacts = readArtifacts(modelJson, (j) => {
    if (j.format !== 'layers-model') throw new Error(`${modelJson}: not a layers-model`);
  });
  return tf.loadLayersModel({ load: async () => artifacts });
}

module.exports = { registerCustomLayers, loadLayersModel };
