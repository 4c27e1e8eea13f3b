// Bundles the node console (www/index.*) and the demo shared list (www/board.*) with the node's
// package pkg/ (`make pkg`), imported by its name `tabnode-web` as an app that installed it would.
// webpack 5 takes its wasm as an asset through `new URL(…, import.meta.url)`: no wasm experiment.
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
  resolve: { alias: { 'tabnode-web': path.join(root, 'pkg') } },
  performance: { hints: false },
  plugins: [
    new HtmlWebpackPlugin({ template: path.join(root, 'www/index.html'), chunks: ['index'] }),
    new HtmlWebpackPlugin({ template: path.join(root, 'www/board.html'), filename: 'board.html', chunks: ['board'] }),
  ],
};
