// Bundles the node console (www/index.*) and the demo shared list (www/board.*) with the wasm node that wasm-bindgen generated into pkg/.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import HtmlWebpackPlugin from 'html-webpack-plugin';

const root = path.dirname(fileURLToPath(import.meta.url));

export default {
  mode: process.env.NODE_ENV === 'development' ? 'development' : 'production',
  entry: { index: path.join(root, 'www/index.js'), board: path.join(root, 'www/board.js') },
  output: {
    path: path.join(root, 'www/dist'),
    filename: '[name].[contenthash].js',
    webassemblyModuleFilename: '[hash].wasm',
    clean: true,
  },
  experiments: { asyncWebAssembly: true },
  performance: { hints: false },
  plugins: [
    new HtmlWebpackPlugin({ template: path.join(root, 'www/index.html'), chunks: ['index'] }),
    new HtmlWebpackPlugin({ template: path.join(root, 'www/board.html'), filename: 'board.html', chunks: ['board'] }),
  ],
};
