// The trials webview's entry (bundled by scripts/build.mjs to dist/webview.js and dist/webview.css).
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { App } from './app';

const root = document.getElementById('app');
if (root) new App(root).start();
