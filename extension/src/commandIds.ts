/** Every command the extension registers; scripts/check-commands.mjs compares them with package.json. */
export const COMMANDS = {
  runTuningScript: 'hyperoptRunner.runTuningScript',
  runWithExecutor: 'hyperoptRunner.runWithExecutor',
  runOnLastExecutor: 'hyperoptRunner.runOnLastExecutor',
  stopStudy: 'hyperoptRunner.stopStudy',
  cancelStudy: 'hyperoptRunner.cancelStudy',
  setStudyTimeout: 'hyperoptRunner.setStudyTimeout',
  openCharts: 'hyperoptRunner.openCharts',
  openInMlflow: 'hyperoptRunner.openInMlflow',
  copyRunId: 'hyperoptRunner.copyRunId',
  showLogs: 'hyperoptRunner.showLogs',
  revealScript: 'hyperoptRunner.revealScript',
  refreshRuns: 'hyperoptRunner.refreshRuns',
  addSshHosts: 'hyperoptRunner.addSshHosts',
  showOutput: 'hyperoptRunner.showOutput',
  setMlflowToken: 'hyperoptRunner.setMlflowToken',
  forgetSshPassphrases: 'hyperoptRunner.forgetSshPassphrases',
  stopService: 'hyperoptRunner.stopService',
  loadMore: 'hyperoptRunner.loadMore',
  revealStudy: 'hyperoptRunner.revealStudy',
  runStudyAgain: 'hyperoptRunner.runStudyAgain',
  selectInterpreter: 'hyperoptRunner.selectInterpreter',
} as const;

export type CommandId = (typeof COMMANDS)[keyof typeof COMMANDS];
